"""Scoring cleans a log the way its model's training did.

A scoring model records the resolved settings of :func:`segml.load_transactions`
its training log was cleaned with (``CustomerScorer.cleaning``). Batch scoring
starts from those and lets the caller override them; an override that contradicts
the model's setting is a :class:`CleaningWarning` naming both values.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["APPLIED_SETTINGS", "CleaningConflict", "CleaningWarning", "scoring_options"]

#: The recorded settings scoring applies: what the columns are called and how values
#: are read and rows kept. File-format settings (``sep``, ``encoding``, ``sheet_name``)
#: belong to each file; ``as_of`` and ``on_invalid`` to each run: those are not applied.
APPLIED_SETTINGS = (
    "customer_id",
    "timestamp",
    "amount",
    "timestamp_format",
    "timezone",
    "dayfirst",
    "decimal",
    "currency",
    "currency_column",
    "order_id",
    "returns",
    "zero_amounts",
    "drop_duplicates",
)


class CleaningWarning(UserWarning):
    """A cleaning option given for scoring contradicts the model's own setting.

    Attributes
    ----------
    key : str
        The :func:`segml.load_transactions` parameter.
    model_value, given_value
        The model's (training) setting and the value given, which is used.
    """

    def __init__(self, key: str, model_value: Any, given_value: Any):
        self.key = key
        self.model_value = model_value
        self.given_value = given_value
        super().__init__(
            f"{key}={given_value!r} contradicts the model's cleaning: it was trained with "
            f"{key}={model_value!r}. The given {key}={given_value!r} is used; scores may "
            "differ from training for the rows it treats differently."
        )


@dataclass(frozen=True)
class CleaningConflict:
    """One given option that differs from the model's setting (the given value wins)."""

    key: str
    model_value: Any
    given_value: Any


def _loader_defaults() -> dict[str, Any]:
    from segml.transactions import load_transactions

    parameters = inspect.signature(load_transactions).parameters
    return {name: parameters[name].default for name in APPLIED_SETTINGS if name in parameters}


def scoring_options(
    model_cleaning: Mapping[str, Any] | None, given: Mapping[str, Any] | None
) -> tuple[dict[str, Any], list[CleaningConflict]]:
    """The loader options of a scoring run: the model's cleaning, then ``given`` on top.

    Parameters
    ----------
    model_cleaning : mapping or None
        ``CustomerScorer.cleaning`` (None for a model saved before segml recorded it:
        then only ``given`` applies, as before).
    given : mapping or None
        Options of :func:`segml.load_transactions` given for this run (a config's
        ``transactions`` section, command-line options); they win.

    Returns
    -------
    options : dict
        Keyword arguments for :func:`segml.load_transactions`.
    conflicts : list of CleaningConflict
        Given values that differ from a setting the model recorded (a setting the
        model left undecided, such as ``dayfirst=None``, conflicts with nothing).

    Examples
    --------
    >>> options, conflicts = scoring_options(
    ...     {"drop_duplicates": False, "returns": "drop", "sep": ";"}, {"returns": "net"})
    >>> options
    {'drop_duplicates': False, 'returns': 'net'}
    >>> conflicts
    [CleaningConflict(key='returns', model_value='drop', given_value='net')]
    """
    defaults = _loader_defaults()
    recorded = {key: value for key, value in dict(model_cleaning or {}).items() if key in defaults}
    given = dict(given or {})
    conflicts = []
    if model_cleaning is not None:
        for key, value in given.items():
            if key not in defaults:
                continue
            model_value = recorded.get(key, defaults[key])
            if model_value is not None and value != model_value:
                conflicts.append(CleaningConflict(key, model_value, value))
    return {**recorded, **given}, conflicts


def warn_conflicts(conflicts: list[CleaningConflict]) -> None:
    """One :class:`CleaningWarning` per conflict (caught and reworded by the CLI)."""
    for conflict in conflicts:
        warnings.warn(
            CleaningWarning(conflict.key, conflict.model_value, conflict.given_value),
            stacklevel=3,
        )
