"""The one-page tier report: a self-contained HTML page a manager reads and an analyst checks.

:func:`build_tier_report` returns the page as text. Everything it needs is in the
page: the CSS is inline and every chart is a base64 PNG ``data:`` URI, so it opens
offline, from an e-mail attachment or from MLflow's artifact view, and refers to no
server, script or font. Every text shown (labels, names, actions, table cells) is
HTML-escaped.

Sections: the tier and segment tables (size, share, mean CLV, mean churn
probability, action), the actions by tier and churn risk, the seed charts (tier bar
and pie, frequency versus spend, segment profiles), the CLV evaluation (holdout
metrics, purchase-model selection), the churn evaluation (the model against its
baselines), the quality gates, and the migration from the champion when given.
"""

from __future__ import annotations

import base64
import html
import io
import math
import numbers
from collections.abc import Mapping
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

# The churn model's risk bands, highest first: the by-risk columns of the segment map.
from segml.models.churn import RISK_BANDS as _RISK_BANDS
from segml.reports import _segments

__all__ = ["build_tier_report"]

# Charts are drawn at this resolution: sharp on a laptop screen, ~50-150 kB each.
_FIGURE_DPI = 90

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif;
       margin: 24px auto; max-width: 1180px; padding: 0 16px; color: #1d2330;
       background: #ffffff; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 4px; }
h2 { font-size: 1.2em; margin-top: 28px; border-bottom: 2px solid #d8dde6;
     padding-bottom: 4px; }
h3 { font-size: 1.0em; margin: 16px 0 6px; }
p.meta { color: #4a5366; margin-top: 0; }
table { border-collapse: collapse; margin: 8px 0 12px; font-size: 0.9em; }
th, td { border: 1px solid #d8dde6; padding: 4px 8px; vertical-align: top; }
th { background: #eef1f6; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.pass { color: #116b2f; font-weight: bold; }
td.fail { color: #b3121f; font-weight: bold; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
.charts figure { margin: 0; }
.charts img { max-width: 100%; border: 1px solid #e3e6ec; }
figcaption { font-size: 0.85em; color: #4a5366; }
p.note { color: #4a5366; font-size: 0.9em; }
"""


def _text(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _count(value: Any) -> str:
    return "–" if _missing(value) else f"{int(round(float(value))):,}"


def _percent(value: Any) -> str:
    return "–" if _missing(value) else f"{float(value):.1%}"


def _money(value: Any) -> str:
    return "–" if _missing(value) else f"{float(value):,.2f}"


def _number(value: Any, column: str = "") -> str:
    """A metric as text: counts with separators, shares and rates as percentages."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if not isinstance(value, numbers.Number):
        return str(value)
    value = float(value)
    if math.isnan(value):
        return "–"
    name = column.lower()
    if name.endswith(("_rate", "_share", "share", "_capture")):
        return f"{value:.1%}"
    if name.endswith("_pct"):
        return f"{value:,.2f}%"
    if value.is_integer() and abs(value) >= 1:
        return f"{value:,.0f}"
    if abs(value) >= 1000:
        return f"{value:,.1f}"
    return f"{value:.3f}"


def _table(
    header: list[str], rows: list[list[tuple[str, str]]], table_id: str, caption: str = ""
) -> str:
    """An HTML table; each cell is ``(text, css class)``; all text is escaped here."""
    head = "".join(f"<th>{_text(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="{klass}">{_text(text)}</td>' if klass else f"<td>{_text(text)}</td>"
            for text, klass in row
        )
        + "</tr>"
        for row in rows
    )
    cap = f"<caption>{_text(caption)}</caption>" if caption else ""
    return (
        f'<table id="{_text(table_id)}">{cap}<thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table>"
    )


def _frame_table(frame: pd.DataFrame, table_id: str, index_name: str | None = None) -> str:
    """A DataFrame of metrics (index = row names) as a table, numbers formatted."""
    header = [index_name or frame.index.name or ""] + [str(c) for c in frame.columns]
    rows = []
    for label, row in frame.iterrows():
        cells = [(str(label), "")]
        for column, value in row.items():
            numeric = isinstance(value, numbers.Number) and not isinstance(value, bool)
            # A one-column metric table is named by its rows (purchases_total_error_pct).
            name = str(label) if frame.shape[1] == 1 else str(column)
            cells.append((_number(value, name), "num" if numeric else ""))
        rows.append(cells)
    return _table(header, rows, table_id)


def _png_data_uri(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=_FIGURE_DPI)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _chart(figure: Figure, caption: str) -> str:
    return (
        f'<figure><img src="{_png_data_uri(figure)}" alt="{_text(caption)}">'
        f"<figcaption>{_text(caption)}</figcaption></figure>"
    )


def _group_rows(groups: pd.DataFrame, column: str) -> list[list[tuple[str, str]]]:
    rows = []
    for _, entry in groups[groups["column"] == column].sort_values("rank").iterrows():
        label = str(entry["label"])
        rows.append(
            [
                (label, ""),
                *([] if column == "tier" else [(str(entry["name"]), "")]),
                (_count(entry["size"]), "num"),
                (_percent(entry["share"]), "num"),
                (_money(entry.get("mean_clv")), "num"),
                (_percent(entry.get("mean_churn_probability")), "num"),
                (str(entry["action"]), ""),
            ]
        )
    return rows


def _risk_rows(groups: pd.DataFrame) -> tuple[str, list[list[tuple[str, str]]]]:
    """(column, rows) of the actions by (group, churn risk band), when the map has them."""
    if f"action_risk_{_RISK_BANDS[0]}" not in groups.columns:
        return "", []
    keyed = groups[groups[f"action_risk_{_RISK_BANDS[0]}"].notna()].sort_values("rank")
    rows = []
    for _, entry in keyed.iterrows():
        for band in _RISK_BANDS:
            rows.append(
                [
                    (str(entry["label"]), ""),
                    (band, ""),
                    (_count(entry.get(f"size_risk_{band}")), "num"),
                    (str(entry[f"action_risk_{band}"]), ""),
                ]
            )
    column = str(keyed["column"].iloc[0]) if len(keyed) else ""
    return column, rows


def _gates_section(gates: pd.DataFrame | None) -> str:
    if gates is None or len(gates) == 0:
        return '<p class="note" id="no-gates">No gates evaluated.</p>'
    missing = [c for c in ("gate", "value", "bound", "passed") if c not in gates.columns]
    if missing:
        raise ValueError(
            f"build_tier_report: the gates table lacks the column(s) {missing}; it needs "
            f"gate, value, bound, passed (and optionally message); found {list(gates.columns)}."
        )
    has_message = "message" in gates.columns
    rows = []
    for _, gate in gates.iterrows():
        passed = bool(gate["passed"])
        rows.append(
            [
                (str(gate["gate"]), ""),
                (_number(gate["value"]), "num"),
                (_number(gate["bound"]), "num"),
                ("pass" if passed else "FAIL", "pass" if passed else "fail"),
                *([(str(gate["message"]), "")] if has_message else []),
            ]
        )
    n_failed = int((~gates["passed"].astype(bool)).sum())
    summary = (
        f"All {len(gates)} gates passed."
        if n_failed == 0
        else f"{n_failed} of {len(gates)} gates failed."
    )
    header = ["gate", "value", "bound", "result"] + (["detail"] if has_message else [])
    return f"<p>{_text(summary)}</p>" + _table(header, rows, "gates")


def _migration_section(migration: pd.DataFrame | Mapping[str, pd.DataFrame] | None) -> str:
    if migration is None:
        return ""
    matrices = migration if isinstance(migration, Mapping) else {"tier": migration}
    parts = ["<h2>Migration from the champion</h2>"]
    for column, matrix in matrices.items():
        header = [f"{matrix.index.name or 'previous'} \\ {matrix.columns.name or 'current'}"]
        header += [str(c) for c in matrix.columns]
        rows = [
            [(str(label), "")] + [(_count(v), "num") for v in row.to_numpy()]
            for label, row in matrix.iterrows()
        ]
        parts.append(f"<h3>{_text(column)} migration (customers)</h3>")
        parts.append(_table(header, rows, f"migration-{column}"))
        parts.append(
            '<div class="charts">'
            + _chart(
                _segments.plot_migration_matrix(matrix, title=f"{column} migration"),
                f"{column} migration: previous (rows) to current (columns)",
            )
            + "</div>"
        )
    return "".join(parts)


def build_tier_report(
    scorer,
    *,
    features: pd.DataFrame | None = None,
    scores: pd.DataFrame | None = None,
    run_id: str | None = None,
    model_name: str | None = None,
    as_of: Any = None,
    gates: pd.DataFrame | None = None,
    migration: pd.DataFrame | Mapping[str, pd.DataFrame] | None = None,
    title: str = "Customer tier report",
) -> str:
    """One self-contained HTML page of a fitted scorer: tiers, segments, charts, evaluation.

    Parameters
    ----------
    scorer : CustomerScorer
        Fitted (:meth:`~segml.scoring.CustomerScorer.fit`); its segment map gives the
        tables, ``evaluation_`` the CLV and churn evaluation.
    features : pandas.DataFrame, optional
        The customer features at ``as_of`` (:func:`segml.scoring.customer_features`)
        the charts are drawn from; default ``scorer.diagnostics_["features"]`` (fit
        with ``diagnostics=True``).
    scores : pandas.DataFrame, optional
        ``scorer.predict(features)`` when the caller has it already (a training run
        computes it once for its artifacts, figures and this page); default computed here.
    run_id, model_name : str, optional
        Shown in the title line (the MLflow run, the registered model).
    as_of : date-like, optional
        Training date shown; default the segment map's ``as_of``.
    gates : pandas.DataFrame, optional
        Quality gates, columns ``gate, value, bound, passed`` (and ``message``);
        without it the page says no gates were evaluated.
    migration : DataFrame or mapping of name to DataFrame, optional
        Migration matrix (:func:`segml.scoring.migration_matrix`, counts) from the
        champion, or ``{"tier": ..., "segment": ...}``; shown as tables and heatmaps.
    title : str
        Page title.

    Returns
    -------
    str
        The HTML document (UTF-8 text; write it as ``report.html``).

    Raises
    ------
    ValueError
        No features to draw the charts from, or a gates table without its columns.

    Examples
    --------
    >>> from segml.datasets import load_cdnow
    >>> from segml.models.clv import CLVModel
    >>> from segml.models.segments import SegmentModel
    >>> from segml.scoring import CustomerScorer
    >>> from segml.reports._html import build_tier_report
    >>> scorer = CustomerScorer(clv=CLVModel(time_unit="W"), segments=SegmentModel(n_segments=4))
    >>> scorer = scorer.fit(load_cdnow(sample=True), as_of="1998-06-30", diagnostics=True)
    >>> page = build_tier_report(scorer, run_id="abc123")
    >>> page.startswith("<!DOCTYPE html>"), "http://" in page, page.count("data:image/png")
    (True, False, 4)
    """
    if features is None:
        features = getattr(scorer, "diagnostics_", {}).get("features")
    if features is None:
        raise ValueError(
            "build_tier_report needs the customer features to draw the charts: fit the "
            "scorer with diagnostics=True, or pass features=customer_features(log, as_of=...)."
        )
    groups = scorer.segment_map_.to_frame()
    if as_of is None:
        as_of = scorer.segment_map_.metadata.get("as_of") or scorer.evaluation_.get(
            "cutoffs", {}
        ).get("as_of")
    as_of_text = str(pd.Timestamp(as_of).date()) if as_of is not None else "unknown"
    if scores is None:
        scores = scorer.predict(features)
    elif not scores.index.equals(features.index):
        raise ValueError(
            f"scores ({len(scores):,} rows) are not scorer.predict(features) of the "
            f"{len(features):,} customers in features: pass both for the same customers, "
            "in the same order, or leave scores out."
        )
    table = features.join(scores)
    purchase_model = str(getattr(scorer.clv_, "purchase_model_", "bgnbd"))

    meta = [f"as of {as_of_text}", f"{scorer.segment_map_.n_customers:,} customers"]
    if run_id is not None:
        meta.insert(0, f"run {run_id}")
    if model_name is not None:
        meta.append(f"model {model_name}")
    meta.append(f"purchase model {purchase_model}")

    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{_text(title)}{_text(f' – run {run_id}' if run_id else '')}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>{_text(title)}</h1>",
        f'<p class="meta" id="meta">{_text(" · ".join(meta))}</p>',
    ]

    # ---- who is where, and what to do
    money_header = ["size", "share", "value (mean CLV)", "churn (mean probability)", "action"]
    parts.append("<h2>Tiers</h2>")
    parts.append(_table(["tier", *money_header], _group_rows(groups, "tier"), "tiers"))
    risk_column, risk_rows = _risk_rows(groups)
    if risk_rows:
        parts.append(f"<h3>Actions by {_text(risk_column)} and churn risk</h3>")
        parts.append(
            _table([risk_column, "risk", "customers", "action"], risk_rows, "actions-by-risk")
        )
    parts.append("<h2>Segments</h2>")
    parts.append(
        _table(["segment", "name", *money_header], _group_rows(groups, "segment"), "segments")
    )

    # ---- the seed charts, segments labelled by name
    names = (
        groups[groups["column"] == "segment"].set_index("label")["name"].to_dict()
        if "segment" in set(groups["column"])
        else None
    )
    tiers = list(scorer.scorecard_.tier_labels_)
    charts = [
        (_segments.plot_tier_counts(table["tier"], order=tiers), "Customers per tier"),
        (_segments.plot_tier_shares(table["tier"], order=tiers), "Share of customers per tier"),
    ]
    if "total_spend" in table:  # a purchases-only log has no spend to plot
        charts.append(
            (
                _segments.plot_frequency_vs_spend(table, names=names),
                "Orders against spend, coloured by segment",
            )
        )
    charts.append(
        (_segments.plot_segment_profiles(table, names=names), "Segment profiles (medians)")
    )
    parts.append("<h2>Charts</h2>")
    parts.append('<div class="charts">' + "".join(_chart(f, c) for f, c in charts) + "</div>")

    # ---- CLV evaluation
    parts.append("<h2>CLV evaluation</h2>")
    parts.append(
        f"<p>Purchase model: <b>{_text(purchase_model)}</b>. Holdout: the model fitted on "
        "the calibration period predicts each customer's holdout purchases and spend.</p>"
    )
    holdout = pd.Series(scorer.evaluation_["clv_holdout"], dtype="float64")
    parts.append(_frame_table(holdout.to_frame("value"), "clv-holdout", "metric"))
    selection = getattr(scorer.clv_, "model_selection_", None)
    if selection is not None and len(selection):
        parts.append("<h3>Purchase model selection (holdout)</h3>")
        parts.append(_frame_table(selection, "clv-selection", "model"))

    # ---- churn evaluation
    churn = scorer.evaluation_["churn"]
    parts.append("<h2>Churn evaluation</h2>")
    if "model" in churn.index and "roc_auc" in churn.columns and len(churn) > 1:
        baselines = churn.drop(index="model")["roc_auc"]
        best = baselines.idxmax()
        model_auc = float(churn.loc["model", "roc_auc"])
        lead = model_auc - baselines.max()
        parts.append(
            f"<p>On the time-split test, the churn model's ROC AUC is "
            f"{_text(f'{model_auc:.3f}')} against "
            f"{_text(f'{baselines.max():.3f}')} for the best baseline ({_text(best)}): "
            f"{_text('a lead' if lead > 0 else 'a shortfall')} of "
            f"{_text(f'{abs(lead):.3f}')}.</p>"
        )
    parts.append(_frame_table(churn, "churn-evaluation", "scorer"))

    # ---- gates and migration
    parts.append("<h2>Quality gates</h2>")
    parts.append(_gates_section(gates))
    parts.append(_migration_section(migration))
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
