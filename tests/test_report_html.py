"""The one-page tier report: parsed (every table holds the run's numbers, every image
decodes, nothing refers to the network), rendered in headless Chromium, and written
by ``segml report`` from a run in a real SQLite MLflow store.
"""

from __future__ import annotations

import base64
import copy
import io
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from matplotlib import image as mpimg
from mlflow import MlflowClient
from typer.testing import CliRunner

from segml.cli import app
from segml.datasets import load_cdnow
from segml.models.churn import ChurnModel
from segml.models.clv import CLVModel
from segml.models.segments import SegmentModel
from segml.reports._html import build_tier_report
from segml.scoring import CustomerScorer, customer_features, migration_matrix
from segml.tracking import train

AS_OF = "1998-06-30"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
CHROMIUM = "/usr/bin/chromium"
INSTALL_CHROMIUM = (
    "Install Debian's Chromium to render the report: apt-get update && "
    "apt-get install -y chromium (as root; .ci/run does this)."
)
runner = CliRunner()


class Page(HTMLParser):
    """Tables (by id: rows of cell texts), images, attributes and text of a page."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tables: dict[str, list[list[str]]] = {}
        self.cell_classes: dict[str, list[list[str]]] = {}
        self.images: list[str] = []
        self.attributes: list[tuple[str, str, str]] = []
        self.tags: list[str] = []
        self.text: list[str] = []
        self._table = None
        self._cell: list[str] | None = None
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        self.attributes.extend((tag, k, v or "") for k, v in attrs.items())
        if tag == "table":
            self._table = attrs.get("id", f"table-{len(self.tables)}")
            self.tables[self._table] = []
            self.cell_classes[self._table] = []
        elif tag == "tr" and self._table is not None:
            self.tables[self._table].append([])
            self.cell_classes[self._table].append([])
        elif tag in ("td", "th") and self._table is not None:
            self._cell = []
            self.cell_classes[self._table][-1].append(attrs.get("class", ""))
        elif tag == "img":
            self.images.append(attrs.get("src", ""))

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)

    def body(self, table_id: str) -> list[list[str]]:
        """The rows of a table without its header row."""
        return self.tables[table_id][1:]

    def header(self, table_id: str) -> list[str]:
        return self.tables[table_id][0]


def count(text: str) -> int:
    return int(text.replace(",", ""))


def percent(text: str) -> float:
    assert text.endswith("%"), text
    return float(text[:-1].replace(",", "")) / 100


def number(text: str) -> float:
    return float(text.replace(",", ""))


@pytest.fixture(scope="module")
def scorer(cdnow_sample) -> CustomerScorer:
    # purchase_model="auto" so the run has a purchase-model selection table.
    return CustomerScorer(
        clv=CLVModel(time_unit="W", purchase_model="auto"),
        segments=SegmentModel(n_segments=4, random_state=0),
        churn=ChurnModel(random_state=0),
    ).fit(cdnow_sample, as_of=AS_OF, diagnostics=True)


@pytest.fixture(scope="module")
def gates() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "gate": ["customers", "churn_lead_over_baseline"],
            "value": [2357.0, -0.008],
            "bound": [1000.0, 0.0],
            "passed": [True, False],
            "message": ["2,357 customers >= 1,000", "churn model <loses> to -expected_purchases"],
        }
    )


@pytest.fixture(scope="module")
def migration(scorer) -> pd.DataFrame:
    """Tier migration between the scores at as_of and at a month before."""
    features = scorer.diagnostics_["features"]
    current = scorer.predict(features)["tier"]
    earlier = customer_features(load_cdnow(sample=True), as_of="1998-05-31")
    previous = scorer.predict(earlier)["tier"]
    return migration_matrix(previous, current)


@pytest.fixture(scope="module")
def page_text(scorer, gates, migration) -> str:
    return build_tier_report(
        scorer, run_id="run-0123", model_name="segml-scorer", gates=gates, migration=migration
    )


@pytest.fixture(scope="module")
def page(page_text) -> Page:
    return Page(page_text)


def test_the_title_line_names_the_run_the_date_and_the_model(page):
    meta = " ".join("".join(page.text).split())
    assert "run run-0123 · as of 1998-06-30 · 2,357 customers · model segml-scorer" in meta


def test_the_tier_table_holds_the_segment_map(scorer, page):
    groups = scorer.segment_map_.to_frame()
    tiers = groups[groups["column"] == "tier"].sort_values("rank")
    assert page.header("tiers") == [
        "tier",
        "size",
        "share",
        "value (mean CLV)",
        "churn (mean probability)",
        "action",
    ]
    rows = page.body("tiers")
    assert (
        [r[0] for r in rows]
        == list(scorer.scorecard_.tier_labels_)
        == ["VIP", "regular", "prospect"]
    )
    for row, (_, entry) in zip(rows, tiers.iterrows(), strict=True):
        assert count(row[1]) == entry["size"]
        assert percent(row[2]) == pytest.approx(entry["share"], abs=0.0005)
        assert number(row[3]) == pytest.approx(entry["mean_clv"], abs=0.005)
        assert percent(row[4]) == pytest.approx(entry["mean_churn_probability"], abs=0.0005)
        assert row[5] == entry["action"]
    # The tier counts are the scorer's own: every customer once.
    scores = scorer.predict(scorer.diagnostics_["features"])
    assert {r[0]: count(r[1]) for r in rows} == scores["tier"].value_counts().to_dict()
    assert sum(count(r[1]) for r in rows) == 2357


def test_the_segment_table_holds_the_segment_map_by_name(scorer, page):
    groups = scorer.segment_map_.to_frame()
    segments = groups[groups["column"] == "segment"].sort_values("rank")
    rows = page.body("segments")
    assert len(rows) == 4
    for row, (_, entry) in zip(rows, segments.iterrows(), strict=True):
        assert row[0] == str(entry["label"])
        assert row[1] == entry["name"]
        assert count(row[2]) == entry["size"]
        assert percent(row[3]) == pytest.approx(entry["share"], abs=0.0005)
        assert number(row[4]) == pytest.approx(entry["mean_clv"], abs=0.005)
        assert percent(row[5]) == pytest.approx(entry["mean_churn_probability"], abs=0.0005)
        assert row[6] == entry["action"]
    scores = scorer.predict(scorer.diagnostics_["features"])
    assert {int(r[0]): count(r[2]) for r in rows} == scores["segment"].value_counts().to_dict()


def test_the_actions_by_risk_table_gives_each_tier_and_band_its_action(scorer, page):
    scores = scorer.predict(scorer.diagnostics_["features"])
    rows = page.body("actions-by-risk")
    assert len(rows) == 9  # 3 tiers x 3 risk bands
    for tier, band, customers, action in rows:
        mine = scores[(scores["tier"] == tier) & (scores["risk_band"] == band)]
        assert count(customers) == len(mine)
        assert set(mine["action"]) <= {action}
    vip_high = next(r for r in rows if r[:2] == ["VIP", "high"])
    assert vip_high[3] == "Retention call by the account manager; personal offer."


def test_the_clv_tables_hold_the_holdout_metrics_and_the_selection(scorer, page):
    holdout = scorer.evaluation_["clv_holdout"]
    rows = {name: value for name, value in page.body("clv-holdout")}
    assert set(rows) == set(holdout)
    assert count(rows["n_customers"]) == holdout["n_customers"] == 2357
    assert number(rows["purchases_mae"]) == pytest.approx(holdout["purchases_mae"], abs=0.0005)
    assert number(rows["spend_mae"]) == pytest.approx(holdout["spend_mae"], abs=0.0005)
    assert rows["purchases_total_error_pct"].endswith("%")
    assert number(rows["purchases_total_error_pct"][:-1]) == pytest.approx(
        holdout["purchases_total_error_pct"], abs=0.005
    )
    selection = scorer.clv_.model_selection_
    header = page.header("clv-selection")
    body = page.body("clv-selection")
    assert [r[0] for r in body] == list(selection.index)
    chosen = [r[0] for r in body if r[header.index("chosen")] == "yes"]
    assert chosen == [scorer.clv_.purchase_model_]
    for row in body:
        assert number(row[header.index("holdout_mae")]) == pytest.approx(
            selection.loc[row[0], "holdout_mae"], abs=0.0005
        )


def test_the_churn_table_holds_the_model_and_its_baselines(scorer, page):
    churn = scorer.evaluation_["churn"]
    header = page.header("churn-evaluation")
    rows = page.body("churn-evaluation")
    assert [r[0] for r in rows] == list(churn.index)
    assert rows[0][0] == "model"
    for row in rows:
        for column in ("roc_auc", "pr_auc"):
            assert number(row[header.index(column)]) == pytest.approx(
                churn.loc[row[0], column], abs=0.0005
            )
        assert percent(row[header.index("churn_rate")]) == pytest.approx(
            churn.loc[row[0], "churn_rate"], abs=0.0005
        )
    # The sentence above the table says who wins, by how much.
    best = churn.drop(index="model")["roc_auc"]
    text = " ".join("".join(page.text).split())
    assert f"ROC AUC is {churn.loc['model', 'roc_auc']:.3f} against {best.max():.3f}" in text
    assert f"best baseline ({best.idxmax()})" in text


def test_the_gates_are_shown_pass_and_fail(page):
    rows = page.body("gates")
    assert [r[:4] for r in rows] == [
        ["customers", "2,357", "1,000", "pass"],
        ["churn_lead_over_baseline", "-0.008", "0.000", "FAIL"],
    ]
    assert rows[1][4] == "churn model <loses> to -expected_purchases"  # escaped, then read back
    assert page.cell_classes["gates"][2][3] == "fail"
    assert "1 of 2 gates failed." in "".join(page.text)


def test_without_gates_or_migration_the_page_says_no_gates_were_evaluated(scorer):
    bare = Page(build_tier_report(scorer))
    assert "gates" not in bare.tables
    assert "No gates evaluated." in "".join(bare.text)
    assert not [t for t in bare.tables if t.startswith("migration")]
    assert len(bare.images) == 4  # the four seed charts


def test_the_migration_table_holds_the_matrix(page, migration):
    rows = page.body("migration-tier")
    assert page.header("migration-tier")[1:] == [str(c) for c in migration.columns]
    assert [r[0] for r in rows] == [str(i) for i in migration.index]
    counts = np.array([[count(v) for v in r[1:]] for r in rows])
    np.testing.assert_array_equal(counts, migration.to_numpy())


def test_every_image_is_an_inline_png_that_decodes(page):
    assert len(page.images) == 5  # tier bar, tier pie, scatter, profiles, migration
    from PIL import Image

    for src in page.images:
        prefix = "data:image/png;base64,"
        assert src.startswith(prefix)
        data = base64.b64decode(src[len(prefix) :], validate=True)
        assert data.startswith(PNG_SIGNATURE)
        pixels = mpimg.imread(io.BytesIO(data), format="png")
        assert pixels.ndim == 3 and pixels.shape[0] > 200 and pixels.shape[1] > 300
        assert pixels[..., :3].std() > 0.05  # a chart, not an empty canvas
        with Image.open(io.BytesIO(data)) as picture:
            picture.verify()


def test_nothing_refers_to_the_network(page_text, page):
    assert "http://" not in page_text and "https://" not in page_text
    # No protocol-relative (//host) reference either, outside the base64 of the images.
    assert "//" not in re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page_text)
    assert not {"script", "link", "iframe", "object", "embed"} & set(page.tags)
    assert "url(" not in page_text and "@import" not in page_text
    for tag, name, value in page.attributes:
        if name in ("src", "href"):
            assert value.startswith("data:"), (tag, name, value[:60])


def test_text_is_escaped(scorer):
    gates = pd.DataFrame(
        {"gate": ["<script>alert(1)</script>"], "value": [1.0], "bound": [2.0], "passed": [False]}
    )
    text = build_tier_report(scorer, model_name='a "quoted" <b>name</b> & co', gates=gates)
    assert "<script>" not in text and "<b>name</b>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    parsed = Page(text)
    assert parsed.body("gates")[0][0] == "<script>alert(1)</script>"
    assert 'model a "quoted" <b>name</b> & co' in "".join(parsed.text)


def test_a_scorer_without_diagnostics_needs_the_features(scorer):
    bare = copy.copy(scorer)
    del bare.diagnostics_
    with pytest.raises(ValueError, match="fit the scorer with diagnostics=True"):
        build_tier_report(bare)
    features = customer_features(load_cdnow(sample=True), as_of=AS_OF)
    assert Page(build_tier_report(bare, features=features)).body("tiers") == Page(
        build_tier_report(scorer)
    ).body("tiers")


def test_a_gates_table_without_its_columns_is_a_clear_error(scorer):
    with pytest.raises(ValueError, match=r"lacks the column\(s\) \['passed'\]"):
        build_tier_report(scorer, gates=pd.DataFrame({"gate": ["x"], "value": [1], "bound": [2]}))


def test_the_page_renders_in_headless_chromium(page_text, tmp_path):
    if shutil.which("chromium") is None and not os.path.exists(CHROMIUM):
        pytest.fail(f"Chromium is not installed at {CHROMIUM}. {INSTALL_CHROMIUM}")
    report = tmp_path / "report.html"
    report.write_text(page_text, encoding="utf-8")
    shot = tmp_path / "shot.png"
    completed = subprocess.run(
        [
            shutil.which("chromium") or CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={shot}",
            "--window-size=1280,2000",
            report.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0 and shot.is_file(), completed.stderr[-2000:]
    pixels = mpimg.imread(shot)[..., :3]
    assert pixels.shape[:2] == (2000, 1280)
    assert pixels.std() > 0.05
    colours = np.unique((pixels * 255).round().astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 500
    # The charts were drawn: matplotlib's first colour (tier bar, pie) fills many
    # pixels; nothing else on the page uses it.
    blue = np.array([0x1F, 0x77, 0xB4]) / 255
    assert (np.abs(pixels - blue).max(axis=-1) < 0.04).sum() > 5_000


# ---------------------------------------------------------------- segml report


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One small training run in an embedded store (folder, uri, result)."""
    folder = tmp_path_factory.mktemp("report-store")
    uri = f"sqlite:///{folder}/mlflow.db"
    config = {
        "data": {"source": "cdnow-sample", "name": "CDNOW sample"},
        "transactions": {"drop_duplicates": False},
        "clv": {"time_unit": "W"},
        "segments": {"n_segments": 4, "random_state": 0},
        "churn": {"random_state": 0},
        "scorer": {"churn_horizon_days": 90, "clv_holdout_days": 273},
        "run": {
            "as_of": AS_OF,
            "experiment_name": "segml-report-test",
            "registered_model_name": "segml-report-test-scorer",
        },
    }
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)
        yield folder, uri, train(config, tracking_uri=uri)


def test_segml_report_writes_the_runs_report(trained, tmp_path):
    _, uri, result = trained
    client = MlflowClient(tracking_uri=uri)
    logged = {item.path for item in client.list_artifacts(result.run_id)}
    if "report.html" not in logged:
        # Until segml train logs the report itself, log it as it will: built from
        # the run's scorer, with the features at the run's as_of.
        features = customer_features(load_cdnow(sample=True), as_of=AS_OF)
        client.log_text(
            result.run_id,
            build_tier_report(result.scorer, features=features, run_id=result.run_id),
            "report.html",
        )
    out = tmp_path / "out" / "report.html"
    outcome = runner.invoke(
        app, ["report", result.run_id, "--out", str(out), "--tracking-uri", uri]
    )
    assert outcome.exit_code == 0, outcome.output
    assert f"report of run {result.run_id} -> " in " ".join(outcome.output.split())
    written = Page(out.read_text(encoding="utf-8"))
    tiers = result.scorer.segment_map_.to_frame().query("column == 'tier'")
    assert {r[0]: count(r[1]) for r in written.body("tiers")} == dict(
        zip(tiers["label"], tiers["size"], strict=True)
    )
    assert len(written.images) >= 4
    assert sorted(p.name for p in out.parent.iterdir()) == ["report.html"]  # no temp file left


def test_segml_report_of_a_run_without_a_report_is_one_error_line(trained, tmp_path):
    _, uri, result = trained
    client = MlflowClient(tracking_uri=uri)
    bare = client.create_run(result.experiment_id).info.run_id
    client.set_terminated(bare)
    out = tmp_path / "report.html"
    out.write_text("previous report")
    outcome = runner.invoke(app, ["report", bare, "--out", str(out), "--tracking-uri", uri])
    assert outcome.exit_code == 1
    message = " ".join(outcome.output.split())
    assert message.startswith("error:")
    assert f"Run {bare} at {uri} has no report.html artifact" in message
    assert out.read_text() == "previous report"  # nothing replaced


def test_segml_report_of_an_unknown_run_or_store_is_one_error_line(trained, tmp_path):
    _, uri, _ = trained
    out = tmp_path / "report.html"
    outcome = runner.invoke(app, ["report", "0" * 32, "--out", str(out), "--tracking-uri", uri])
    assert outcome.exit_code == 1
    assert f"No run '{'0' * 32}' at {uri}" in " ".join(outcome.output.split())
    missing = f"sqlite:///{tmp_path}/none.db"
    outcome = runner.invoke(app, ["report", "abc", "--out", str(out), "--tracking-uri", missing])
    assert outcome.exit_code == 1
    assert "No MLflow store at" in outcome.output
    assert not (tmp_path / "none.db").exists() and not out.exists()
    outcome = runner.invoke(app, ["report", "abc", "--out", str(tmp_path / "r.pdf")])
    assert outcome.exit_code == 1
    assert "--out must end in .html" in outcome.output


def test_scores_given_make_the_same_page_and_must_match_the_features(scorer):
    # A training run scores its customers once and hands the scores to the page.
    features = scorer.diagnostics_["features"]
    scores = scorer.predict(features)
    assert build_tier_report(scorer, scores=scores, run_id="r") == build_tier_report(
        scorer, run_id="r"
    )
    with pytest.raises(ValueError, match=r"scores \(10 rows\) are not scorer.predict\(features\)"):
        build_tier_report(scorer, scores=scores.head(10))
