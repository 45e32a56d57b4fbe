"""Loading a saved scoring model runs no code from it, refuses altered folders with
one error naming the file, warns on other library versions, and keeps its origin.

Every model here is real: a scorer fitted once on the CDNOW sample, exported with
segml, then copied and altered file by file as an attacker or a bad copy would.
"""

from __future__ import annotations

import copy as copying
import json
import shutil
import subprocess
import sys
import warnings
import zipfile
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.calibration import CalibratedClassifierCV

import segml
from segml.models.churn import TRUSTED_TYPES
from segml.models.clv import CLVModel
from segml.models.segments import SegmentModel
from segml.persistence import PersistenceError, dump_skops, load_skops
from segml.scoring import CustomerScorer, customer_features
from segml.tracking._load import (
    LoadedModel,
    ModelLoadError,
    ModelVersionWarning,
    load_scoring_model,
)
from segml.tracking._model import cast_to_signature, export_model, log_model
from segml.transactions import load_transactions
from tests._version_1 import save_churn_as_version_1

AS_OF = "1998-06-30"
SCORER = Path("artifacts", "scorer")
CHURN = SCORER / "churn"


@pytest.fixture(scope="module")
def features(cdnow_sample) -> pd.DataFrame:
    clean = load_transactions(cdnow_sample)[0]
    return customer_features(clean, as_of=AS_OF)


@pytest.fixture(scope="module")
def scorer(cdnow_sample) -> CustomerScorer:
    clean = load_transactions(cdnow_sample)[0]
    # These tests tamper with the churn classifier's skops file: keep the classifier
    # even where it loses to a baseline (on the sample it does).
    return CustomerScorer(
        clv=CLVModel(time_unit="W"),
        segments=SegmentModel(n_segments=4, random_state=0),
        churn_fallback=False,
    ).fit(clean, as_of=AS_OF)


@pytest.fixture(scope="module")
def model_input(scorer, features) -> pd.DataFrame:
    return cast_to_signature(features, scorer.feature_columns_)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, scorer, model_input) -> Path:
    """The pristine export; tests alter copies of it."""
    folder = tmp_path_factory.mktemp("export") / "segml-cdnow"
    return export_model(scorer, folder, input_example=model_input.head(5))


@pytest.fixture
def copy(exported, tmp_path) -> Path:
    return Path(shutil.copytree(exported, tmp_path / "model"))


@pytest.fixture
def old_copy(copy, scorer) -> Path:
    """A copy whose churn model is in format version 1: a skops file beside the JSON,
    as segml saved it before the trees were data. Such folders still load, and their
    skops file is checked as strictly as ever."""
    shutil.rmtree(copy / CHURN)
    save_churn_as_version_1(scorer.churn_, copy / CHURN)
    return copy


def expected(scorer, model_input) -> pd.DataFrame:
    from segml.tracking._model import predict_with_ids

    return predict_with_ids(scorer, model_input)


# ---------------------------------------------------------------------- same scores
def test_an_exported_folder_scores_exactly_as_mlflows_pyfunc(exported, scorer, model_input):
    import mlflow

    loaded = load_scoring_model(exported)
    assert isinstance(loaded, LoadedModel)
    ours = loaded.predict(model_input)
    theirs = mlflow.pyfunc.load_model(str(exported)).predict(model_input)
    pd.testing.assert_frame_equal(ours, theirs)
    pd.testing.assert_frame_equal(ours, expected(scorer, model_input))
    assert loaded.scorer.feature_columns_ == scorer.feature_columns_
    # An export made outside a run and without an origin: the folder's name only.
    assert (loaded.name, loaded.version, loaded.run_id) == ("segml-cdnow", "", "")
    assert loaded.saved_versions["scikit-learn"] == version("scikit-learn")
    # With the scoring day, as MLflow's inference parameter: the next-purchase dates.
    dated = loaded.predict(model_input, as_of=AS_OF)
    pd.testing.assert_frame_equal(
        dated,
        mlflow.pyfunc.load_model(str(exported)).predict(model_input, params={"as_of": AS_OF}),
    )
    assert dated["next_purchase_date"].notna().any() and ours["next_purchase_date"].isna().all()


def test_loading_a_folder_imports_neither_mlflow_nor_the_folders_code(copy, tmp_path, scorer):
    """In a fresh process: the loader needs neither MLflow, skops.io nor scikit-learn
    (2-3 s of imports saved), and a replaced entry script and extra modules in the folder never
    run."""
    marker = tmp_path / "pwned"
    payload = f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"
    (copy / "_pyfunc_entry.py").write_text(payload)
    (copy / SCORER / "sitecustomize.py").write_text(payload)
    (copy / SCORER / "__init__.py").write_text(payload)
    script = (
        "import sys\n"
        "from segml.tracking._load import load_scoring_model\n"
        f"model = load_scoring_model({str(copy)!r})\n"
        "print(len(model.scorer.feature_columns_), 'mlflow' in sys.modules,"
        " 'skops.io' in sys.modules, 'sklearn' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=copy / SCORER,  # even run from inside the folder
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [str(len(scorer.feature_columns_)), "False", "False", "False"]
    assert not marker.exists()


def test_a_replaced_entry_script_never_runs_though_mlflow_would_run_it(
    copy, tmp_path, scorer, model_input
):
    marker = tmp_path / "pwned"
    (copy / "_pyfunc_entry.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"
        + (Path(__file__).parents[1] / "segml/tracking/_pyfunc_entry.py").read_text()
    )
    loaded = load_scoring_model(copy)
    assert not marker.exists()
    pd.testing.assert_frame_equal(loaded.predict(model_input), expected(scorer, model_input))

    # The threat is real: MLflow's own loader executes the folder's script.
    import mlflow

    mlflow.pyfunc.load_model(str(copy))
    assert marker.read_text() == "ran"


def test_a_trusted_copy_gives_mlflow_only_installed_code(copy, tmp_path, scorer, model_input):
    """What the Spark engine hands spark_udf: the checked scorer, segml's own script."""
    import mlflow

    from segml.tracking._model import ENTRY_POINT, trusted_pyfunc_copy

    marker = tmp_path / "pwned"
    (copy / "_pyfunc_entry.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).write_text('ran')\n"
    )
    loaded = load_scoring_model(copy)
    clean = trusted_pyfunc_copy(loaded.scorer, tmp_path / "trusted")
    assert (clean / "_pyfunc_entry.py").read_bytes() == Path(ENTRY_POINT).read_bytes()
    predicted = mlflow.pyfunc.load_model(str(clean)).predict(model_input)
    pd.testing.assert_frame_equal(predicted, expected(scorer, model_input))
    assert not marker.exists()


class _Trap:
    """Unpickling this writes a marker file: proof that a loader unpickled it."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "unpickled"))


def test_a_cloudpickle_model_is_refused_before_anything_is_unpickled(tmp_path, monkeypatch):
    import mlflow
    from mlflow.pyfunc import PythonModel

    marker = tmp_path / "pwned"
    folder = tmp_path / "pickled"

    class Pickled(PythonModel):
        def __init__(self):
            self.trap = _Trap(str(marker))

        # Type hints, or MLflow warns that it cannot validate the input.
        def predict(self, context, model_input: list[str], params=None) -> list[str]:
            return model_input

    # Requirements given: MLflow would otherwise load the pickle in a subprocess to infer them.
    mlflow.pyfunc.save_model(str(folder), python_model=Pickled(), pip_requirements=["mlflow"])
    assert (folder / "python_model.pkl").is_file() and not marker.exists()

    with pytest.raises(ModelLoadError) as error:
        load_scoring_model(folder)
    message = str(error.value)
    assert str(folder / "MLmodel") in message
    assert "pickled python_model ('python_model.pkl')" in message
    assert "never unpickles" in message
    assert not marker.exists()

    # The trap is live: MLflow 3.17 unpickles such a folder by default.
    monkeypatch.delenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", raising=False)
    mlflow.pyfunc.load_model(str(folder))
    assert marker.read_text() == "unpickled"


# ------------------------------------------------------------------ paths outside
def _edit_json(path: Path, change) -> None:
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


@pytest.mark.parametrize(
    "reference", ["../../../../outside.skops", "ABSOLUTE", "../churn/churn_classifier.skops"]
)
def test_a_classifier_file_outside_the_folder_is_refused(old_copy, tmp_path, reference):
    outside = tmp_path / "outside.skops"
    shutil.copy(old_copy / CHURN / "churn_classifier.skops", outside)  # a loadable file
    reference = str(outside) if reference == "ABSOLUTE" else reference
    _edit_json(old_copy / CHURN / "churn_model.json", lambda d: d.update(classifier_file=reference))
    with pytest.raises(ModelLoadError) as error:
        load_scoring_model(old_copy)
    message = str(error.value)
    assert f"{old_copy / CHURN / 'churn_model.json'}: classifier_file {reference!r}" in message
    assert "is not a file of the model's folder" in message


def test_a_symlink_out_of_the_folder_is_refused(old_copy, tmp_path):
    outside = tmp_path / "elsewhere.skops"
    shutil.copy(old_copy / CHURN / "churn_classifier.skops", outside)
    (old_copy / CHURN / "churn_classifier.skops").unlink()
    (old_copy / CHURN / "churn_classifier.skops").symlink_to(outside)
    with pytest.raises(ModelLoadError, match="points outside the model folder") as error:
        load_scoring_model(old_copy)
    assert str(old_copy / CHURN / "churn_classifier.skops") in str(error.value)


def test_a_symlink_loop_or_a_missing_file_is_named(copy):
    link = copy / SCORER / "loop"
    link.symlink_to(link)
    with pytest.raises(ModelLoadError, match="loop cannot be resolved"):
        load_scoring_model(copy)
    link.unlink()
    (copy / CHURN / "churn_model.json").unlink()
    with pytest.raises(ModelLoadError, match=r"No saved model file at .*churn_model\.json"):
        load_scoring_model(copy)
    shutil.rmtree(copy / SCORER)
    with pytest.raises(ModelLoadError, match=r"artifacts/scorer is missing: the model folder"):
        load_scoring_model(copy)


def test_a_symlinked_folder_inside_is_followed_and_checked(old_copy, tmp_path, scorer):
    """A link inside the folder is fine; what it leads to is checked like the rest."""
    (old_copy / "store").mkdir()
    shutil.move(old_copy / CHURN, old_copy / "store" / "churn")
    (old_copy / CHURN).symlink_to(old_copy / "store" / "churn")
    loaded = load_scoring_model(old_copy).scorer.churn_
    assert list(loaded.feature_names_in_) == list(scorer.churn_.feature_names_in_)
    outside = tmp_path / "away.skops"
    shutil.move(old_copy / "store/churn/churn_classifier.skops", outside)
    (old_copy / "store/churn/churn_classifier.skops").symlink_to(outside)
    with pytest.raises(ModelLoadError, match="points outside the model folder"):
        load_scoring_model(old_copy)


# --------------------------------------------------------------- tampered files
def _set_windows(document):
    document["settings"]["windows_days"] = "90"


def _drop_clv(document):
    del document["clv"]


def _break_segments(document):
    document["segments"]["params"] = 5


def _foreign_format(document):
    document["format"] = "sklearn.Pipeline"


def _break_clv_params(document):
    document["clv"]["gamma_gamma_params"] = {"p": "a lot"}


@pytest.mark.parametrize(
    "tamper, needle",
    [
        ("{not json", "is not valid JSON"),
        (_set_windows, "settings.windows_days is '90', not a list of positive integers"),
        (_drop_clv, "clv is missing or not a mapping"),
        (_break_segments, "is damaged: "),
        (_foreign_format, "has format 'sklearn.Pipeline'"),
        (_break_clv_params, "is incomplete or damaged"),
    ],
)
def test_a_tampered_scorer_json_is_one_error_naming_it(copy, tamper, needle):
    path = copy / SCORER / "scorer.json"
    if isinstance(tamper, str):
        path.write_text(tamper)
    else:
        _edit_json(path, tamper)
    with pytest.raises(ModelLoadError) as error:
        load_scoring_model(copy)
    assert str(path) in str(error.value) and needle in str(error.value)


def _mlmodel(copy: Path, change) -> None:
    path = copy / "MLmodel"
    document = yaml.safe_load(path.read_text())
    change(document)
    path.write_text(yaml.safe_dump(document))


def _add_flavor(document):
    document["flavors"]["sklearn"] = {"pickled_model": "model.pkl"}


def _other_loader(document):
    document["flavors"]["python_function"]["loader_module"] = "evil.loader"


def _artifact_outside(document):
    document["flavors"]["python_function"]["artifacts"]["scorer"]["path"] = "/etc"


def _artifact_up(document):
    document["flavors"]["python_function"]["artifacts"]["scorer"]["path"] = "../elsewhere"


def _code_paths(document):
    document["flavors"]["python_function"]["code"] = "code"


def _other_script(document):
    document["flavors"]["python_function"]["model_code_path"] = "/tmp/evil.py"


def _fewer_inputs(document):
    inputs = json.loads(document["signature"]["inputs"])
    document["signature"]["inputs"] = json.dumps(inputs[:-1])


@pytest.mark.parametrize(
    "tamper, needle",
    [
        ("flavors: [unclosed", "is not a valid MLmodel file"),
        ("a: &x [1]\nb: *x\n", "uses a YAML alias"),
        ("just text", "not a YAML mapping"),
        (_add_flavor, "has the flavor(s) ['sklearn'] besides python_function"),
        (_other_loader, "describes loader_module 'evil.loader'"),
        (_artifact_outside, "is not a path inside the model folder"),
        (_artifact_up, "is not a path inside the model folder"),
        (_code_paths, "entries a segml scoring model never has (['code'])"),
        (_other_script, "names the entry script '/tmp/evil.py'"),
        (_fewer_inputs, "do not match the feature columns"),
    ],
)
def test_a_tampered_mlmodel_is_one_error_naming_it(copy, tamper, needle):
    if isinstance(tamper, str):
        (copy / "MLmodel").write_text(tamper)
    else:
        _mlmodel(copy, tamper)
    with pytest.raises(ModelLoadError) as error:
        load_scoring_model(copy)
    assert str(copy / "MLmodel") in str(error.value) and needle in str(error.value)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:1000])


def _untrusted(path: Path) -> None:
    from sklearn.preprocessing import FunctionTransformer

    dump_skops(FunctionTransformer(np.log1p), path)


def _trusted_but_not_a_classifier(path: Path) -> None:
    from sklearn.isotonic import IsotonicRegression

    dump_skops(IsotonicRegression().fit([0.0, 1.0], [0.0, 1.0]), path)


def _damaged_member(path: Path) -> None:
    """A valid zip and schema whose arrays are garbage."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data if name == "schema.json" else b"\x93NUMPY garbage")


@pytest.mark.parametrize(
    "tamper, needle",
    [
        (_truncate, "is not a skops file"),
        (_untrusted, "types that are not on the trust list: ['numpy.log1p', 'sklearn."),
        (_trusted_but_not_a_classifier, "holds a IsotonicRegression, not the Calibrated"),
        (_damaged_member, "is damaged or holds objects segml does not load"),
    ],
)
def test_a_tampered_skops_file_is_one_error_naming_it(old_copy, tamper, needle):
    path = old_copy / CHURN / "churn_classifier.skops"
    tamper(path)
    with pytest.raises(ModelLoadError) as error:
        load_scoring_model(old_copy)
    assert str(path) in str(error.value) and needle in str(error.value)


@pytest.mark.parametrize(
    "field, value", [("left", 10**6), ("right", 0), ("feature_idx", 99), ("is_categorical", 1)]
)
def test_a_crafted_tree_that_would_read_out_of_bounds_is_refused(old_copy, scorer, field, value):
    """Types alone are not enough: scikit-learn walks tree arrays without bounds checks."""
    path = old_copy / CHURN / "churn_classifier.skops"
    calibrated = copying.deepcopy(scorer.churn_.calibrated_)
    tree = calibrated.calibrated_classifiers_[0].estimator._predictors[3][0]
    root = int(np.flatnonzero(tree.nodes["is_leaf"] == 0)[0])
    tree.nodes[field][root] = value
    dump_skops(calibrated, path)
    # Every type in the file is on the trust list: only the values are wrong.
    assert isinstance(load_skops(path, trusted=TRUSTED_TYPES), CalibratedClassifierCV)
    with pytest.raises(ModelLoadError) as error:
        load_scoring_model(old_copy)
    assert f"{path} holds a booster that cannot be trusted" in str(error.value)


def test_a_damaged_churn_model_json_is_named(copy):
    path = copy / CHURN / "churn_model.json"
    _edit_json(path, lambda d: d.pop("feature_names"))
    with pytest.raises(ModelLoadError, match="the key 'feature_names' is missing") as error:
        load_scoring_model(copy)
    assert str(path) in str(error.value)


def test_a_folder_without_a_model_is_named(tmp_path):
    with pytest.raises(ModelLoadError, match=r"No MLflow model at .*nowhere \(no MLmodel"):
        load_scoring_model(tmp_path / "nowhere")


def test_the_pyfunc_entry_checks_the_artifact_too(copy):
    """mlflow.pyfunc.load_model gives the same error, naming the file."""
    import mlflow

    _edit_json(copy / SCORER / "scorer.json", _set_windows)
    with pytest.raises(ModelLoadError, match="settings.windows_days is '90'"):
        mlflow.pyfunc.load_model(str(copy))


# --------------------------------------------------------------------- versions
def _bump_minor(text: str) -> str:
    major, minor, *_ = text.split(".")
    return f"{major}.{int(minor) + 1}.0"


def test_scikit_learn_versions_do_not_matter_to_trees_saved_as_data(copy, scorer, model_input):
    """The churn trees are numbers evaluated with numpy: another scikit-learn cannot
    change the scores, so it is not warned about (a version-1 model is: below)."""
    _edit_json(
        copy / SCORER / "scorer.json",
        lambda d: d["versions"].update({"scikit-learn": "0.24.2", "skops": "0.1.0"}),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = load_scoring_model(copy)
    pd.testing.assert_frame_equal(loaded.predict(model_input), expected(scorer, model_input))


def test_other_major_or_minor_library_versions_warn_naming_both(old_copy, scorer, model_input):
    copy = old_copy  # a version-1 churn model: read through scikit-learn
    sklearn_now, mlflow_now = version("scikit-learn"), version("mlflow")
    _edit_json(
        copy / SCORER / "scorer.json",
        lambda d: d["versions"].update({"scikit-learn": "0.24.2"}),
    )
    requirements = copy / "requirements.txt"
    requirements.write_text(
        requirements.read_text().replace(
            f"mlflow=={mlflow_now}", f"mlflow=={_bump_minor(mlflow_now)}"
        )
    )
    with pytest.warns(ModelVersionWarning) as caught:
        loaded = load_scoring_model(copy)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert f"scikit-learn 0.24.2 (installed: {sklearn_now})" in message
    assert f"mlflow {_bump_minor(mlflow_now)} (installed: {mlflow_now})" in message
    assert "numpy" not in message
    pd.testing.assert_frame_equal(loaded.predict(model_input), expected(scorer, model_input))


def test_a_patch_version_difference_is_silent(copy):
    numpy_now = version("numpy")
    major, minor, *_ = numpy_now.split(".")
    _edit_json(
        copy / SCORER / "scorer.json",
        lambda d: d["versions"].update({"numpy": f"{major}.{minor}.999"}),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a ModelVersionWarning would fail here
        loaded = load_scoring_model(copy)
    assert loaded.saved_versions["numpy"] == f"{major}.{minor}.999"


# ----------------------------------------------------------------------- origin
def test_an_export_keeps_its_origin(tmp_path, scorer, model_input):
    folder = export_model(
        scorer,
        tmp_path / "cdnow",
        input_example=model_input.head(3),
        origin={"name": "segml-cdnow", "version": 3, "run_id": "0a1b2c"},
    )
    recorded = yaml.safe_load((folder / "MLmodel").read_text())["metadata"]
    assert recorded == {"segml_origin": {"name": "segml-cdnow", "version": "3", "run_id": "0a1b2c"}}
    loaded = load_scoring_model(folder)
    assert (loaded.name, loaded.version, loaded.run_id) == ("segml-cdnow", "3", "0a1b2c")
    with pytest.raises(ValueError, match="origin must be a mapping with the keys name"):
        export_model(scorer, tmp_path / "x", input_example=model_input.head(3), origin={"n": 1})
    assert not (tmp_path / "x").exists()


def test_a_tampered_origin_is_named(copy):
    _mlmodel(copy, lambda d: d.update(metadata={"segml_origin": ["not", "a", "mapping"]}))
    with pytest.raises(ModelLoadError, match="metadata.segml_origin must map name, version"):
        load_scoring_model(copy)


@pytest.fixture(scope="module")
def registry(tmp_path_factory, scorer, model_input):
    """A real SQLite store holding the scorer as version 1 of a registered model."""
    import mlflow

    from segml.tracking._store import prepare_store

    folder = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{folder}/mlflow.db"
    prepare_store(uri)
    with pytest.MonkeyPatch.context() as patch:
        # mlflow.set_tracking_uri / set_registry_uri also write these variables, and
        # setting them back to None does not remove them: the patch restores both, so
        # no later test's MlflowClient reads this store's registry.
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        patch.setenv("MLFLOW_REGISTRY_URI", uri)
        client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
        experiment = client.create_experiment(
            "loading", artifact_location=(folder / "mlruns").as_uri()
        )
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        try:
            with mlflow.start_run(experiment_id=experiment) as run:
                info = log_model(
                    scorer, input_example=model_input.head(3), registered_model_name="segml-load"
                )
        finally:
            mlflow.set_tracking_uri(None)
            mlflow.set_registry_uri(None)
        client.set_registered_model_alias("segml-load", "champion", info.registered_model_version)
    return uri, run.info.run_id


def test_a_registered_model_loads_by_alias_and_version_with_its_origin(
    registry, scorer, model_input
):
    uri, run_id = registry
    for reference in ("models:/segml-load@champion", "models:/segml-load/1"):
        loaded = load_scoring_model(reference, tracking_uri=uri)
        assert (loaded.name, loaded.version, loaded.run_id) == ("segml-load", "1", run_id)
        assert loaded.source == "models:/segml-load/1"
        pd.testing.assert_frame_equal(loaded.predict(model_input), expected(scorer, model_input))


def test_an_unknown_registered_model_alias_or_version_lists_what_exists(registry):
    uri, _ = registry
    cases = {
        "models:/nope@champion": "No registered model named 'nope' in "
        f"{uri}; registered models: segml-load.",
        "models:/segml-load@candidate": "has no alias 'candidate' (aliases: @champion -> "
        "version 1; versions: 1)",
        "models:/segml-load/7": "has no version '7'",
        "models:/only-a-name": "Cannot read the model URI 'models:/only-a-name'",
    }
    for reference, needle in cases.items():
        with pytest.raises(ModelLoadError) as error:
            load_scoring_model(reference, tracking_uri=uri)
        assert needle in str(error.value), str(error.value)


def test_the_tracking_uri_comes_from_the_environment(registry, monkeypatch):
    uri, run_id = registry
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert load_scoring_model("models:/segml-load@champion").run_id == run_id


def test_model_load_error_is_a_persistence_error():
    """One class for the CLI to print; still a ValueError for Python callers."""
    assert issubclass(ModelLoadError, PersistenceError)
    assert issubclass(ModelLoadError, ValueError)


def test_segml_score_prints_one_error_line_naming_the_tampered_file(
    old_copy, tmp_path, cdnow_sample
):
    from typer.testing import CliRunner

    from segml.cli import app

    transactions = tmp_path / "transactions.csv"
    cdnow_sample.to_csv(transactions, index=False)
    path = old_copy / CHURN / "churn_classifier.skops"
    _truncate(path)
    result = CliRunner().invoke(
        app,
        [
            "score",
            "--model",
            str(old_copy),
            "--transactions",
            str(transactions),
            "--as-of",
            AS_OF,
            "--out",
            str(tmp_path / "scores.parquet"),
        ],
    )
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.output
    assert "is not a skops file" in " ".join(result.output.split())
    assert "churn_classifier.skops" in result.output
    assert not (tmp_path / "scores.parquet").exists()


def test_an_export_names_no_path_of_the_machine_that_wrote_it(exported, scorer, model_input):
    # MLflow's save_model writes the entry script's site-packages path and the scorer's
    # temporary staging folder into MLmodel; an export keeps only relative names.
    import mlflow

    text = (exported / "MLmodel").read_text()
    assert str(Path(segml.__file__).parent) not in text
    assert str(exported.parent) not in text and "/tmp" not in text
    document = yaml.safe_load(text)["flavors"]["python_function"]
    assert document["model_code_path"] == "_pyfunc_entry.py"
    assert document["artifacts"]["scorer"]["uri"] == document["artifacts"]["scorer"]["path"]
    # Both loaders still read it, and score alike.
    pd.testing.assert_frame_equal(
        mlflow.pyfunc.load_model(str(exported)).predict(model_input),
        load_scoring_model(exported).predict(model_input),
    )
