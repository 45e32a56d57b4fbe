"""The cleaning options every command takes, and messages worded for the command line.

``segml validate``, ``features``, ``train`` and ``score`` read a transaction log
with :func:`segml.load_transactions`; each takes the same options for it, defined
once here (:func:`cleaning_options`), and ``--config`` (whose ``transactions``
section holds the same settings under their Python names). An option given on the
command line beats the config's value.

The library words its messages for Python callers (``customer_id='client'``);
:func:`cli_words` rewrites them for people typing commands (``--customer-id client``).
"""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import typer

__all__ = ["CLEANING_OPTIONS", "cleaning_options", "cli_words", "option_text", "with_overrides"]


def _choice(*allowed: str) -> Callable[[Any], Any]:
    def check(value):
        if value is not None and value not in allowed:
            raise typer.BadParameter(f"must be one of {', '.join(allowed)}; got {value!r}.")
        return value

    return check


@dataclass(frozen=True)
class _Option:
    name: str  # the load_transactions parameter
    type: Any
    help: str
    flags: tuple[str, ...] = ()
    callback: Callable[[Any], Any] | None = None

    def parameter(self) -> inspect.Parameter:
        option = typer.Option(
            *self.flags, help=self.help, callback=self.callback, rich_help_panel="Cleaning"
        )
        return inspect.Parameter(
            self.name,
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[self.type | None, option],
        )


#: The options of :func:`segml.load_transactions` on every command (None: not given).
CLEANING_OPTIONS = (
    _Option("customer_id", str, "Name of the customer id column in the input."),
    _Option("timestamp", str, "Name of the purchase time column."),
    _Option("amount", str, "Name of the purchase value column."),
    _Option("timestamp_format", str, "strftime format of the timestamps, e.g. %d/%m/%Y."),
    _Option("timezone", str, "Zone of the timestamps (aware ones are converted to it)."),
    _Option(
        "dayfirst",
        bool,
        "Read 05/01/1997 as 5 January (--dayfirst) or May 1 (--monthfirst); default: "
        "detected from the dates that can only be read one way.",
        ("--dayfirst/--monthfirst",),
    ),
    _Option(
        "decimal",
        str,
        "Decimal mark of the amounts: auto, '.' or ','.",
        callback=_choice("auto", ".", ","),
    ),
    _Option("currency", str, "Keep rows in this currency (e.g. USD); count the rest dropped."),
    _Option("currency_column", str, "Name of a column holding each row's currency code."),
    _Option("order_id", str, "Name of the order id column (--returns net nets within an order)."),
    _Option(
        "returns",
        str,
        "Negative amounts: drop them, or net them against the purchase.",
        callback=_choice("drop", "net"),
    ),
    _Option("zero_amounts", str, "Zero amounts: drop or keep.", callback=_choice("drop", "keep")),
    _Option(
        "drop_duplicates",
        bool,
        "Drop rows repeating an earlier one exactly (default) or keep them.",
        ("--drop-duplicates/--keep-duplicates",),
    ),
    _Option(
        "on_invalid",
        str,
        "Unparseable values: drop and count them, or stop with an error.",
        callback=_choice("drop", "raise"),
    ),
    _Option("sep", str, "Column separator of a text file, e.g. ';' or '\\t' (default: sniffed)."),
    _Option("encoding", str, "Text encoding of the file (default: UTF-8, else Windows-1252)."),
    _Option("sheet_name", str, "Sheet of an .xlsx file (name or 0-based index)."),
)
_NAMES = tuple(option.name for option in CLEANING_OPTIONS)


def cleaning_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add every cleaning option to a command; it receives them as ``cleaning=dict``.

    The dict holds only the options given on the command line, keyed by
    :func:`segml.load_transactions` parameter name, ready to override a config.
    """
    signature = inspect.signature(command, eval_str=True)
    own = [p for p in signature.parameters.values() if p.name != "cleaning"]
    parameters = own + [option.parameter() for option in CLEANING_OPTIONS]

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        given = {}
        for name in _NAMES:
            value = kwargs.pop(name, None)
            if value is not None:
                given[name] = value
        if "sheet_name" in given and str(given["sheet_name"]).isdigit():
            given["sheet_name"] = int(given["sheet_name"])  # a sheet's 0-based index
        if given.get("sep") == "\\t":  # what a shell passes for --sep '\t'
            given["sep"] = "\t"
        return command(*args, cleaning=given, **kwargs)

    wrapper.__signature__ = signature.replace(parameters=parameters)
    wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
    return wrapper


def with_overrides(config_section: Mapping[str, Any] | None, given: Mapping[str, Any]) -> dict:
    """The loader options: a config's ``transactions`` section, then the command line.

    Options this segml's loader does not take are refused with their option name.
    """
    from segml.transactions import load_transactions

    accepted = inspect.signature(load_transactions).parameters
    unknown = [name for name in given if name not in accepted]
    if unknown:
        raise typer.BadParameter(
            f"{option_text(unknown[0])} is not supported by this segml's loader."
        )
    return {**dict(config_section or {}), **dict(given)}


# ------------------------------------------------------------------ message words
def _value_text(value: Any) -> str:
    text = str(value)
    return repr(text) if (not text or " " in text) else text


def option_text(name: str, value: Any = None) -> str:
    """The command-line spelling of a loader setting.

    Examples
    --------
    >>> option_text("customer_id", "client")
    '--customer-id client'
    >>> option_text("drop_duplicates", False), option_text("dayfirst", True)
    ('--keep-duplicates', '--dayfirst')
    >>> option_text("decimal", ",")
    '--decimal ,'
    """
    flag = "--" + name.replace("_", "-")
    if name == "drop_duplicates" and isinstance(value, bool):
        return "--drop-duplicates" if value else "--keep-duplicates"
    if name == "dayfirst" and isinstance(value, bool):
        return "--dayfirst" if value else "--monthfirst"
    if value is None:
        return flag
    return f"{flag} {_value_text(value)}"


_PYTHON_VALUE = r"""(?:'[^']*'|"[^"]*"|True|False|None|[^\s,;)]+)"""
_OPTION_NAMES = "|".join(sorted((*_NAMES, "as_of"), key=len, reverse=True))
# "pass decimal=',' (--decimal ,)": messages written for both readers; keep the CLI half.
_BOTH = re.compile(rf"\b(?:{_OPTION_NAMES})={_PYTHON_VALUE}\s+\((--[^)]*)\)")
_CALL = re.compile(r"load_transactions\((?:path|source)?,?\s*([^)]*)\)")
_KEYWORD = re.compile(rf"\b({_OPTION_NAMES})=({_PYTHON_VALUE})?")


def _python_value(text: str | None) -> Any:
    if text is None:
        return None
    if text in ("True", "False"):
        return text == "True"
    if text == "None":
        return None
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def _keyword(match: re.Match) -> str:
    name, raw = match.group(1), match.group(2)
    trailing = ""
    if raw and raw[0] not in "'\"" and raw.endswith("."):
        raw, trailing = raw[:-1], "."
    if raw == "None":
        return f"no {option_text(name)}{trailing}"
    return option_text(name, _python_value(raw)) + trailing


def cli_words(message: str, *, keywords: bool = True) -> str:
    """Reword a library message for the command line: option names, not keywords.

    With ``keywords=False`` only advice already written for both readers
    (``decimal=',' (--decimal ,)``) is shortened: a data-quality report's example
    rows are ``column=value`` text that must stay as it is.

    Examples
    --------
    >>> cli_words("Pass the names, e.g. load_transactions(path, customer_id='client', "
    ...           "amount='value').")
    'Pass the names, e.g. --customer-id client --amount value.'
    >>> cli_words("Pass timestamp_format= (a strftime format), or on_invalid='drop'.")
    'Pass --timestamp-format (a strftime format), or --on-invalid drop.'
    >>> cli_words("mixed decimal marks: pass decimal=',' (--decimal ,) to read them.")
    'mixed decimal marks: pass --decimal , to read them.'
    >>> cli_words("Nothing kept (dropped duplicate_row: 3); the report is attached as .report.")
    'Nothing kept (dropped duplicate_row: 3); the report is printed above.'
    >>> cli_words("e.g. customer_id=0042, amount=1,250; pass decimal=',' (--decimal ,)",
    ...           keywords=False)
    'e.g. customer_id=0042, amount=1,250; pass --decimal ,'
    """
    text = _BOTH.sub(lambda m: m.group(1).strip(), message)
    if keywords:
        text = _CALL.sub(lambda m: _KEYWORD.sub(_keyword, m.group(1)).replace(", ", " "), text)
        text = _KEYWORD.sub(_keyword, text)
    text = re.sub(r"the report\s+is attached as `*\.report`*", "the report is printed above", text)
    return text
