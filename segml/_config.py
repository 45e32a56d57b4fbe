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
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "ConfigError",
    "RunSettings",
    "check_config",
    "check_names",
    "load_config",
    "load_yaml",
    "read_source",
    "run_name",
    "section_kwargs",
]

#: Dataset names a config's ``data.source`` may give instead of a path: CDNOW (full and
#: sample, with amounts) and ``lifetimes-example``, lifetimes' purchases-only
#: ``example_transactions.csv`` (columns ``date`` and ``id``, no amount: map them with
#: ``transactions: {customer_id: id, timestamp: date, amount: null}``).
BUNDLED_SOURCES = ("cdnow", "cdnow-sample", "lifetimes-example")


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
        Path of the tier scorecard YAML (default: :meth:`TierScorecard.default`, the
        table ``configs/scorecard_quantiles.yaml`` with edges at quantiles of the
        training data; ``configs/scorecard.yaml`` is the practice table in amounts).
    actions_config : str, optional
        Path of the segment-map actions YAML (default: ``configs/actions.yaml``).
    name : str, optional
        The MLflow run name. Default: the config's name (its file name, else
        ``data.name``), ``as of`` the date, and the first 8 characters of the training
        data's digest, e.g. ``"cdnow as of 1998-06-30 [3f2a9c1e]"``.
    description : str, optional
        Free text shown with the run and its registered version.
    max_training_customers : int, optional
        Spark engine only (``segml train --engine spark``): above this many customers
        the churn and segment tables are a sample of them, by a hash of the customer
        id, and the CLV models are fitted on every customer's distinct rows with
        counts; the run states the sample. Default: ``segml.spark``'s
        ``MAX_TRAINING_CUSTOMERS`` (1,000,000).
    """

    as_of: str | None = None
    experiment_name: str = "segml"
    registered_model_name: str = "segml-scorer"
    scorecard_config: str | None = None
    actions_config: str | None = None
    name: str | None = None
    description: str | None = None
    max_training_customers: int | None = None


def _steps() -> dict[str, Callable]:
    """The config sections and the callables whose parameters they hold."""
    from segml.features import rfm_summary
    from segml.models.churn import ChurnModel
    from segml.models.clv import CLVModel
    from segml.models.segments import SegmentModel
    from segml.scoring import CustomerScorer
    from segml.tracking._gates import GateSettings
    from segml.transactions import load_transactions

    return {
        "transactions": load_transactions,
        "features": rfm_summary,
        "clv": CLVModel,
        "segments": SegmentModel,
        "churn": ChurnModel,
        "scorer": CustomerScorer,
        "run": RunSettings,
        "gates": GateSettings,  # quality gates of a run (segml.tracking._gates)
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


# MLflow's limits (mlflow.utils.validation and its SQL schema, MLflow 3.x): experiment
# and registered model names are VARCHAR(256) columns, run names VARCHAR(250).
MAX_EXPERIMENT_NAME_LENGTH = 256
MAX_REGISTERED_MODEL_NAME_LENGTH = 256
MAX_RUN_NAME_LENGTH = 250
MAX_DESCRIPTION_LENGTH = 4000  # MLflow keeps 5,000 for a version; the rest names run and gates
# A registered model name is also part of models:/NAME@ALIAS and models:/NAME/VERSION
# URIs and of the registry's search filter name='NAME': these characters break them.
_MODEL_NAME_FORBIDDEN = ("@", "/", ":", "'", '"', "\\", "`")


#: Characters a data digest adds to a default run name: `` [`` + 8 + ``]``.
_DIGEST_SUFFIX_LENGTH = 11


def run_name(
    config: dict[str, dict[str, Any]],
    as_of: Any,
    *,
    digest: str | None = None,
    config_name: str | None = None,
) -> str:
    """The MLflow run name of a training run.

    ``run.name`` when the config gives one; otherwise the config's name (its file
    name, else ``data.name``, else the source), ``as of`` the date and the first 8
    characters of the training data's digest, so two runs of one config on
    different data are told apart at a glance.

    Examples
    --------
    >>> config = {"data": {"source": "x.csv"}}
    >>> run_name(config, "1998-06-30", digest="3f2a9c1e77", config_name="cdnow")
    'cdnow as of 1998-06-30 [3f2a9c1e]'
    >>> run_name({"data": {"source": "x.csv"}, "run": {"name": "retrain"}}, "1998-06-30")
    'retrain'
    """
    given = config.get("run", {}).get("name")
    if given:
        return str(given)
    data = config.get("data", {})
    label = config_name or data.get("name") or data.get("source")
    return f"{label} as of {as_of}" + (f" [{digest[:8]}]" if digest else "")


def check_names(config: dict[str, dict[str, Any]], origin: str = "config") -> None:
    """Refuse run, experiment and registered model names MLflow would reject or mangle.

    Checked before anything is fitted, so a bad name costs nothing. Each error
    names the config key and the rule.

    Raises
    ------
    ConfigError

    Examples
    --------
    >>> check_names({"data": {"source": "x.csv"}, "run": {"registered_model_name": "a@b"}})
    Traceback (most recent call last):
    ...
    segml._config.ConfigError: config: run.registered_model_name 'a@b' may not contain '@' ...
    """
    run = config.get("run", {})
    experiment = run.get("experiment_name", RunSettings.experiment_name)
    if not isinstance(experiment, str) or not experiment.strip():
        raise ConfigError(f"{origin}: run.experiment_name must be a non-empty name.")
    if len(experiment) > MAX_EXPERIMENT_NAME_LENGTH:
        raise ConfigError(
            f"{origin}: run.experiment_name is {len(experiment)} characters long; MLflow allows "
            f"at most {MAX_EXPERIMENT_NAME_LENGTH}."
        )
    model = run.get("registered_model_name", RunSettings.registered_model_name)
    if not isinstance(model, str) or not model.strip():
        raise ConfigError(f"{origin}: run.registered_model_name must be a non-empty name.")
    bad = [c for c in _MODEL_NAME_FORBIDDEN if c in model]
    if bad:
        raise ConfigError(
            f"{origin}: run.registered_model_name {model!r} may not contain {bad[0]!r} (none of "
            f"{' '.join(_MODEL_NAME_FORBIDDEN)}: they break models:/NAME@ALIAS URIs and registry "
            "searches); use letters, digits, '-', '_' and '.'."
        )
    if model != model.strip() or model in (".", ".."):
        raise ConfigError(
            f"{origin}: run.registered_model_name {model!r} may not start or end with spaces "
            "or be '.' or '..'."
        )
    if len(model) > MAX_REGISTERED_MODEL_NAME_LENGTH:
        raise ConfigError(
            f"{origin}: run.registered_model_name is {len(model)} characters long; MLflow "
            f"allows at most {MAX_REGISTERED_MODEL_NAME_LENGTH}."
        )
    name = run_name(config, run.get("as_of") or config.get("features", {}).get("as_of"))
    if not run.get("name"):
        name += "x" * _DIGEST_SUFFIX_LENGTH  # the data digest is added after loading
    if len(name) > MAX_RUN_NAME_LENGTH:
        source = "run.name" if run.get("name") else "data.name"
        fix = "run.name (or --run-name)" if run.get("name") else source
        raise ConfigError(
            f"{origin}: the run name made from {source} ({name[:40]!r}...) is {len(name)} "
            f"characters long; MLflow allows at most {MAX_RUN_NAME_LENGTH}: shorten {fix}."
        )
    description = run.get("description")
    if description is not None and len(str(description)) > MAX_DESCRIPTION_LENGTH:
        raise ConfigError(
            f"{origin}: run.description is {len(str(description))} characters long; at most "
            f"{MAX_DESCRIPTION_LENGTH} are kept with a registered version."
        )


def _split_union(annotation: str) -> list[str]:
    """``"int | Sequence[int]"`` -> ``["int", "Sequence[int]"]`` (top-level ``|`` only)."""
    parts, depth, current = [], 0, ""
    for char in annotation:
        depth += char == "["
        depth -= char == "]"
        if char == "|" and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    parts.append(current.strip())
    return parts


def _accepts(kind: str, value: Any) -> bool:
    """Whether a YAML value fits one alternative of a parameter's annotation."""
    if kind in ("Any", ""):
        return True
    if kind == "None":
        return value is None
    if kind == "bool":
        return isinstance(value, bool)
    # numbers.* so that numpy scalars in a config built in Python pass too.
    if kind == "int":
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, numbers.Real) and not isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str | dt.date)
    if kind.startswith("Literal["):
        allowed = eval(kind.removeprefix("Literal"), {})  # noqa: S307 - own annotations
        return value in (allowed if isinstance(allowed, list | tuple) else (allowed,))
    for sequence in ("Sequence[", "tuple[", "list["):
        if kind.startswith(sequence):
            inner = kind[len(sequence) : -1].removesuffix(", ...").strip()
            return isinstance(value, list | tuple) and all(
                any(_accepts(k, item) for k in _split_union(inner)) for item in value
            )
    if kind.startswith("dict"):
        return isinstance(value, dict)
    return True  # a type this checker does not know: the callable checks it


def _describe(kind: str) -> str:
    if kind.startswith("Literal["):
        return "one of " + kind.removeprefix("Literal")
    for sequence in ("Sequence[", "tuple[", "list["):
        if kind.startswith(sequence):
            inner = kind[len(sequence) : -1].removesuffix(", ...").strip()
            return f"a list of {inner}"
    return {"None": "null (empty)", "str": "text", "dict": "a mapping"}.get(
        kind.split("[")[0], kind
    )


def _check_value(path: str, section: str, key: str, value: Any, param: inspect.Parameter) -> None:
    """A value of the kind the parameter's annotation allows, or a ConfigError naming it."""
    annotation = param.annotation
    default = param.default
    if annotation is inspect.Parameter.empty:
        # No annotation (e.g. random_state, as_of): the default's kind, or null.
        if default is inspect.Parameter.empty or default is None or value is None:
            return
        kinds = [type(default).__name__]
    else:
        kinds = _split_union(
            annotation if isinstance(annotation, str) else inspect.formatannotation(annotation)
        )
        if default is None and "None" not in kinds:
            kinds.append("None")
    if any(_accepts(kind, value) for kind in kinds):
        return
    example = f" like {list(default) if isinstance(default, tuple) else default!r}"
    if default is inspect.Parameter.empty or default is None:
        example = ""
    hint = ""
    if not isinstance(value, list | tuple) and any(_accepts(k, [value]) for k in kinds):
        hint = f" (write a list even for one value: [{value}])"
    raise ConfigError(
        f"{path}: {section}.{key} must be {' or '.join(_describe(k) for k in kinds)}{example}, "
        f"got {value!r} ({type(value).__name__}){hint}."
    )


class _AliasRefused(Exception):
    def __init__(self, mark) -> None:
        super().__init__(f"line {mark.line + 1}, column {mark.column + 1}")


class _NoAliasLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing anchors (``&a``) and aliases (``*a``).

    A config has no use for them, and a few nested aliases (a "billion laughs") make
    a small file expand to gigabytes when its values are walked; refusing them while
    composing means nothing is ever expanded.
    """

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise _AliasRefused(event.start_mark)
        return super().compose_node(parent, index)


def load_yaml(path: str | Path) -> Any:
    """Read a YAML file safely: no Python objects, no anchors or aliases.

    Raises
    ------
    ConfigError
        No such file, invalid YAML, or an anchor/alias (naming line and column).
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"No config file at {path}.")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Cannot read {path}: {exc}") from None
    try:
        return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
    except _AliasRefused as exc:
        raise ConfigError(
            f"{path}: YAML anchors and aliases (&name / *name) are not allowed in configs "
            f"({exc}): write the values out."
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None


def check_config(raw: Any, origin: str = "config") -> dict[str, dict[str, Any]]:
    """Check a config's sections, keys, value kinds and names; dates become ISO text.

    ``origin`` names the config in messages (its path). Paths are NOT resolved here
    (see :func:`load_config`).

    Raises
    ------
    ConfigError
        Unknown section or key (the allowed ones are listed), a value of the wrong
        kind (naming ``section.key`` and what is expected), or a bad name.

    Examples
    --------
    >>> check_config({"data": {"source": "cdnow"}, "scorer": {"windows_days": 30}})
    Traceback (most recent call last):
    ...
    segml._config.ConfigError: config: scorer.windows_days must be a list of int like [90], ...
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin} must hold a mapping of sections, got {type(raw).__name__}.")
    steps = _steps()
    allowed_sections = ["data", *steps]
    config: dict[str, dict[str, Any]] = {}
    for section, values in raw.items():
        if section not in allowed_sections:
            raise ConfigError(
                f"{origin}: unknown section {section!r}; allowed sections are {allowed_sections}."
            )
        values = values or {}
        if not isinstance(values, dict):
            raise ConfigError(
                f"{origin}: section {section!r} must be a mapping of keys to values, got "
                f"{values!r} ({type(values).__name__})."
            )
        if section == "data":
            unknown = sorted(set(values) - set(_DATA_KEYS), key=str)
            if unknown:
                raise ConfigError(
                    f"{origin}: unknown key(s) {unknown} in section 'data'; allowed: "
                    f"{ {k: v for k, v in _DATA_KEYS.items()} }."
                )
            for key in _DATA_KEYS:
                if key in values and not isinstance(values[key], str):
                    raise ConfigError(
                        f"{origin}: data.{key} must be text ({_DATA_KEYS[key]}), got "
                        f"{values[key]!r} ({type(values[key]).__name__})."
                    )
        else:
            allowed = _allowed(steps[section])
            unknown = sorted(set(values) - set(allowed), key=str)
            if unknown:
                raise ConfigError(
                    f"{origin}: unknown key(s) {unknown} in section {section!r}; the allowed keys "
                    f"(parameters of {steps[section].__name__}) are {sorted(allowed)}."
                )
            for key, value in values.items():
                _check_value(origin, section, key, value, allowed[key])
        config[section] = {
            k: (v.isoformat() if isinstance(v, dt.date) else v) for k, v in values.items()
        }
    if "source" not in config.get("data", {}):
        raise ConfigError(
            f"{origin}: data.source is required (a CSV/Parquet path, or one of "
            f"{list(BUNDLED_SOURCES)})."
        )
    for section in ("run", "features"):
        as_of = config.get(section, {}).get("as_of")
        if isinstance(as_of, str):
            import pandas as pd

            try:
                pd.Timestamp(as_of)
            except (ValueError, TypeError):
                raise ConfigError(
                    f"{origin}: {section}.as_of must be a date like 1998-06-30, got {as_of!r}."
                ) from None
    check_names(config, origin)
    return config


def load_config(path: str | Path) -> dict[str, dict[str, Any]]:
    """Read and check a run config.

    Parameters
    ----------
    path : str or Path
        A YAML file with a ``data`` section and one section per step.

    Returns
    -------
    dict
        Section name to keyword arguments, dates as ISO strings, file paths resolved
        against the config's folder.

    Raises
    ------
    ConfigError
        Missing file, invalid YAML, YAML anchors/aliases, unknown section or key (the
        allowed ones are listed), a value of the wrong kind, or a bad run name.
    """
    path = Path(path)
    config = check_config(load_yaml(path), str(path))
    _resolve_paths(config, path.parent)
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


def read_source(source: str | Path, mapping: dict[str, Any]):
    """Load and validate a config's ``data.source``: a file, or a bundled dataset name.

    Files are read by :func:`segml.io.read_table` (through
    :func:`segml.load_transactions`), bundled names (``cdnow``, ``cdnow-sample``) by
    :func:`segml.datasets.load_cdnow`; for those, the options that say how to read a
    file (``sep``, ``encoding``, ``sheet_name``) do not apply and are left out.
    ``lifetimes-example`` is the CSV file inside the installed lifetimes package,
    read as a file. Returns ``(clean, report)`` as :func:`segml.load_transactions`.

    Examples
    --------
    >>> from segml._config import read_source
    >>> clean, report = read_source(
    ...     "lifetimes-example", {"customer_id": "id", "timestamp": "date", "amount": None})
    >>> list(clean.columns), clean["customer_id"].nunique(), report.settings["amount"]
    (['customer_id', 'timestamp'], 5000, None)
    """
    from segml.datasets import load_cdnow
    from segml.transactions import load_transactions

    if source == "lifetimes-example":
        clean, report = load_transactions(_lifetimes_example(), **mapping)
        report.source = f"{source} (example_transactions.csv of the lifetimes package)"
        return clean, report
    if isinstance(source, str) and source in BUNDLED_SOURCES:
        options = {k: v for k, v in mapping.items() if k not in _FILE_READING_OPTIONS}
        clean, report = load_transactions(load_cdnow(sample=source == "cdnow-sample"), **options)
        report.source = f"{source} (bundled with the lifetimes package)"
        return clean, report
    return load_transactions(source, **mapping)


def _lifetimes_example() -> Path:
    """lifetimes' purchases-only example log, found without importing lifetimes."""
    from importlib.util import find_spec

    spec = find_spec("lifetimes")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "data.source lifetimes-example ships inside the 'lifetimes' package, which is not "
            "installed: pip install lifetimes==0.11.3"
        )
    return Path(spec.submodule_search_locations[0]) / "datasets" / "example_transactions.csv"


#: load_transactions options that say how to read a file (not used for a DataFrame).
_FILE_READING_OPTIONS = frozenset({"sep", "encoding", "sheet_name"})


def section_kwargs(config: dict[str, dict[str, Any]], section: str) -> dict[str, Any]:
    """The keyword arguments of one step (empty when the config leaves it to defaults)."""
    return dict(config.get(section, {}))
