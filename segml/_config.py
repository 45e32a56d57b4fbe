"""Run configs: YAML files whose sections hold the keyword arguments of segml's functions.

Each section of a config names one step, and its keys are exactly the parameter names
of the function or class that runs that step, so a config reads like the Python call
it becomes. Keys are checked against the signature on load: an unknown key is an error
that lists the allowed ones, and a value of the wrong kind is an error naming the key.

Example (``configs/cdnow.yaml``)::

    data:
      source: cdnow            # a CSV/Parquet path, or the bundled "cdnow" / "cdnow-sample"
    transactions:              # segml.load_transactions(...)
      customer_id: customer_id
    features:                  # segml.rfm_summary(...)
      as_of: 1997-09-30
      unit_multiplier: 7
"""

from __future__ import annotations

import datetime as dt
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["ConfigError", "RunSettings", "load_config", "read_source", "section_kwargs"]

BUNDLED_SOURCES = ("cdnow", "cdnow-sample")


class ConfigError(ValueError):
    """A config that cannot be used: names the file, the key and what is allowed."""


@dataclass
class RunSettings:
    """The ``run`` section: what a training run is called, when, and where it registers.

    Parameters
    ----------
    as_of : str
        Training date (nothing after it is read).
    experiment_name : str, default "segml"
        MLflow experiment of the run.
    registered_model_name : str, default "segml-scorer"
        Registry name of the scoring model.
    scorecard_config : str, optional
        Path of the tier scorecard YAML (default: ``configs/scorecard.yaml``).
    actions_config : str, optional
        Path of the segment-map actions YAML (default: ``configs/actions.yaml``).
    """

    as_of: str | None = None
    experiment_name: str = "segml"
    registered_model_name: str = "segml-scorer"
    scorecard_config: str | None = None
    actions_config: str | None = None


def _steps() -> dict[str, Callable]:
    """The config sections and the callables whose parameters they hold."""
    from segml.features import rfm_summary
    from segml.models.churn import ChurnModel
    from segml.models.clv import CLVModel
    from segml.models.segments import SegmentModel
    from segml.scoring import CustomerScorer
    from segml.transactions import load_transactions

    return {
        "transactions": load_transactions,
        "features": rfm_summary,
        "clv": CLVModel,
        "segments": SegmentModel,
        "churn": ChurnModel,
        "scorer": CustomerScorer,
        "run": RunSettings,
    }


_DATA_KEYS = {"source": "a CSV/Parquet path, or 'cdnow' / 'cdnow-sample'", "name": "a label"}


def _allowed(target: Callable) -> dict[str, inspect.Parameter]:
    signature = inspect.signature(target)
    return {
        name: p
        for name, p in signature.parameters.items()
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        and name
        not in (
            "self",
            "source",
            "transactions",
            "rfm",
            "X",
            "y",
            "clv",
            "segments",
            "scorecard",
            "churn",
            "actions",
        )
    }


def _check_value(path: str, section: str, key: str, value: Any, param: inspect.Parameter) -> None:
    default = param.default
    if default is inspect.Parameter.empty or default is None or value is None:
        return
    if isinstance(value, list) and any(
        word in str(param.annotation) for word in ("Sequence", "list", "tuple")
    ):
        return
    expected = type(default)
    if isinstance(default, bool):
        ok = isinstance(value, bool)
    elif isinstance(default, float):
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif isinstance(default, str):
        ok = isinstance(value, str | dt.date)
    else:
        ok = True
    if not ok:
        raise ConfigError(
            f"{path}: {section}.{key} must be {expected.__name__} like {default!r}, "
            f"got {value!r} ({type(value).__name__})."
        )


def load_config(path: str | Path) -> dict[str, dict[str, Any]]:
    """Read and check a run config.

    Parameters
    ----------
    path : str or Path
        A YAML file with a ``data`` section and one section per step.

    Returns
    -------
    dict
        Section name to keyword arguments, dates as ISO strings.

    Raises
    ------
    ConfigError
        Missing file, invalid YAML, unknown section or key (the allowed ones are
        listed), or a value of the wrong type.
    """
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"No config file at {path}.")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path} must hold a mapping of sections, got {type(raw).__name__}.")
    steps = _steps()
    allowed_sections = ["data", *steps]
    config: dict[str, dict[str, Any]] = {}
    for section, values in raw.items():
        if section not in allowed_sections:
            raise ConfigError(
                f"{path}: unknown section {section!r}; allowed sections are {allowed_sections}."
            )
        values = values or {}
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: section {section!r} must be a mapping of keys to values.")
        if section == "data":
            unknown = sorted(set(values) - set(_DATA_KEYS))
            if unknown:
                raise ConfigError(
                    f"{path}: unknown key(s) {unknown} in section 'data'; allowed: "
                    f"{ {k: v for k, v in _DATA_KEYS.items()} }."
                )
        else:
            allowed = _allowed(steps[section])
            unknown = sorted(set(values) - set(allowed))
            if unknown:
                raise ConfigError(
                    f"{path}: unknown key(s) {unknown} in section {section!r}; the allowed keys "
                    f"(parameters of {steps[section].__name__}) are {sorted(allowed)}."
                )
            for key, value in values.items():
                _check_value(str(path), section, key, value, allowed[key])
        config[section] = {
            k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in values.items()
        }
    _resolve_paths(config, path.parent)
    if "source" not in config.get("data", {}):
        raise ConfigError(
            f"{path}: data.source is required (a CSV/Parquet path, or one of "
            f"{list(BUNDLED_SOURCES)})."
        )
    return config


def _resolve_paths(config: dict[str, dict[str, Any]], folder: Path) -> None:
    """File paths in a config are relative to the config file, wherever it is run from."""

    def resolve(value: str) -> str:
        candidate = Path(value)
        return value if candidate.is_absolute() else str((folder / candidate).resolve())

    data = config.get("data", {})
    if isinstance(data.get("source"), str) and data["source"] not in BUNDLED_SOURCES:
        data["source"] = resolve(data["source"])
    run = config.get("run", {})
    for key in ("scorecard_config", "actions_config"):
        if isinstance(run.get(key), str):
            run[key] = resolve(run[key])


def read_source(source: str, mapping: dict[str, Any]):
    """Load and validate a config's ``data.source``: a file, or a bundled dataset name.

    Returns ``(clean, report)`` as :func:`segml.load_transactions`.
    """
    from segml.datasets import load_cdnow
    from segml.transactions import load_transactions

    if source in BUNDLED_SOURCES:
        clean, report = load_transactions(load_cdnow(sample=source == "cdnow-sample"), **mapping)
        report.source = f"{source} (bundled with the lifetimes package)"
        return clean, report
    return load_transactions(source, **mapping)


def section_kwargs(config: dict[str, dict[str, Any]], section: str) -> dict[str, Any]:
    """The keyword arguments of one step (empty when the config leaves it to defaults)."""
    return dict(config.get(section, {}))
