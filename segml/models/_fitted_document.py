"""The JSON document of a model fitted by maximum likelihood: parameters, their
uncertainty and where they came from. Shared by BG/BB and the sBG retention model.

NaN (a standard error that could not be computed) is stored as ``null``: JSON has no
NaN. Loading checks the format and version first, then turns a missing key or a
value of the wrong type into one ``PersistenceError`` naming the format.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["fitted_document", "restore_fitted"]


def fitted_document(model, format_name: str, format_version: int) -> dict[str, Any]:
    """``to_dict`` of a fitted model with ``params_``, ``standard_errors_``,
    ``log_covariance_``, ``log_likelihood_`` and ``n_customers_``."""
    from segml.persistence import versions

    return {
        "format": format_name,
        "format_version": format_version,
        "hyperparameters": model.get_params(),
        "params": dict(model.params_),
        "standard_errors": {
            k: None if math.isnan(v) else v for k, v in model.standard_errors_.items()
        },
        "log_covariance": [
            [None if math.isnan(v) else v for v in row] for row in model.log_covariance_.tolist()
        ],
        "log_likelihood": model.log_likelihood_,
        "n_customers": model.n_customers_,
        "versions": versions(),
    }


def restore_fitted(
    cls, document: Any, format_name: str, format_version: int, param_names: Sequence[str]
):
    """The fitted model of :func:`fitted_document`'s output (``from_dict``)."""
    from segml.persistence import PersistenceError, check_document

    check_document(document, format_name, format_version)
    try:
        model = cls(**document["hyperparameters"])
        model.params_ = {k: float(document["params"][k]) for k in param_names}
        model.standard_errors_ = {
            k: math.nan if v is None else float(v) for k, v in document["standard_errors"].items()
        }
        model.log_covariance_ = np.array(
            [[math.nan if v is None else v for v in row] for row in document["log_covariance"]],
            dtype=float,
        )
        model.log_likelihood_ = float(document["log_likelihood"])
        model.n_customers_ = int(document["n_customers"])
    except (KeyError, TypeError, ValueError) as exc:
        raise PersistenceError(f"Saved {format_name} is incomplete or damaged: {exc!r}.") from None
    return model
