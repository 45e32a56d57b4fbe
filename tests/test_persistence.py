"""Saving as data: JSON documents and skops files with a trust list."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from segml.persistence import PersistenceError, dump_skops, load_skops, read_json, write_json


def test_json_round_trip_and_atomic_replace(tmp_path):
    path = tmp_path / "model.json"
    write_json({"format": "x", "params": {"r": 0.243, "alpha": 4.414}}, path)
    write_json({"format": "x", "params": {"r": 0.5}}, path)
    assert read_json(path) == {"format": "x", "params": {"r": 0.5}}
    assert [p.name for p in tmp_path.iterdir()] == ["model.json"]  # no temp file left


def test_json_refuses_nan_and_reports_bad_files(tmp_path):
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        write_json({"r": float("nan")}, tmp_path / "bad.json")
    assert not (tmp_path / "bad.json").exists()
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(PersistenceError, match="not valid JSON"):
        read_json(tmp_path / "broken.json")
    with pytest.raises(PersistenceError, match="No saved model file"):
        read_json(tmp_path / "missing.json")


def test_skops_loads_only_trusted_types(tmp_path):
    scaler = StandardScaler().fit(np.arange(10.0).reshape(-1, 1))
    path = tmp_path / "scaler.skops"
    dump_skops(scaler, path)
    loaded = load_skops(path, trusted=["sklearn.preprocessing._data.StandardScaler"])
    np.testing.assert_array_equal(loaded.transform([[3.0]]), scaler.transform([[3.0]]))

    dump_skops(FunctionTransformer(np.log1p), tmp_path / "fn.skops")
    with pytest.raises(PersistenceError, match="not on the trust list"):
        load_skops(tmp_path / "fn.skops", trusted=["sklearn.preprocessing._data.StandardScaler"])


def test_json_that_is_not_utf8_or_not_a_file_is_a_persistence_error(tmp_path):
    (tmp_path / "latin.json").write_bytes(b'{"name": "caf\xe9"}')
    with pytest.raises(PersistenceError, match=r"latin\.json is not valid JSON"):
        read_json(tmp_path / "latin.json")
    (tmp_path / "folder.json").mkdir()
    with pytest.raises(PersistenceError, match=r"Cannot read the saved model file .*folder\.json"):
        read_json(tmp_path / "folder.json")


def test_a_damaged_skops_file_is_a_persistence_error_naming_it(tmp_path):
    scaler = StandardScaler().fit(np.arange(10.0).reshape(-1, 1))
    trusted = ["sklearn.preprocessing._data.StandardScaler"]
    path = tmp_path / "scaler.skops"
    dump_skops(scaler, path)
    path.write_bytes(path.read_bytes()[:200])  # truncated copy
    with pytest.raises(PersistenceError, match=r"scaler\.skops is not a skops file"):
        load_skops(path, trusted=trusted)
    (tmp_path / "folder.skops").mkdir()
    with pytest.raises(PersistenceError, match=r"folder\.skops is not a skops file"):
        load_skops(tmp_path / "folder.skops", trusted=trusted)


def test_what_skops_itself_refuses_is_a_persistence_error(tmp_path):
    """A function inside a trusted object is named by the trust list too; skops' own
    audit or a failed build never escapes as a raw exception."""
    import zipfile

    path = tmp_path / "fn.skops"
    dump_skops(FunctionTransformer(np.log1p), path)
    trusted = ["sklearn.preprocessing._function_transformer.FunctionTransformer"]
    with pytest.raises(PersistenceError, match=r"not on the trust list: \['numpy\.log1p'\]"):
        load_skops(path, trusted=trusted)

    scaler = tmp_path / "scaler.skops"
    dump_skops(StandardScaler().fit(np.arange(10.0).reshape(-1, 1)), scaler)
    with zipfile.ZipFile(scaler) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    with zipfile.ZipFile(scaler, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data if name == "schema.json" else b"\x93NUMPY garbage")
    with pytest.raises(PersistenceError, match=r"scaler\.skops is damaged or holds objects"):
        load_skops(scaler, trusted=["sklearn.preprocessing._data.StandardScaler"])


def _same(a, b, where="root"):
    """Recursive equality of two object trees: types, attributes, arrays bit for bit."""
    assert type(a) is type(b), (where, type(a), type(b))
    if isinstance(a, np.ndarray):
        assert (a.dtype, a.shape) == (b.dtype, b.shape), where
        if a.dtype == object:
            for i, (x, y) in enumerate(zip(a.ravel(), b.ravel(), strict=True)):
                _same(x, y, f"{where}[{i}]")
        else:
            assert a.tobytes() == b.tobytes(), where
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for key in a:
            _same(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _same(x, y, f"{where}[{i}]")
    elif isinstance(a, np.random.Generator):
        assert a.bit_generator.state == b.bit_generator.state, where
    elif hasattr(a, "__dict__") and not isinstance(a, type):
        _same(vars(a), vars(b), where)
    elif type(a).__module__.startswith("sklearn._loss"):  # Cython: compare what pickles it
        assert a.__reduce__()[1:] == b.__reduce__()[1:], where
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b), where
    else:
        assert a == b, (where, a, b)


def test_segmls_skops_reader_builds_exactly_what_skops_builds(tmp_path):
    """load_skops reads a churn model's skops file (as segml saved them before the
    trees were data, format version 1) without importing skops (0.5-0.8 s of
    imports); the objects are the ones skops itself builds, attribute for attribute."""
    import pandas as pd
    import skops.io as sio

    from segml.models.churn import TRUSTED_TYPES, ChurnModel
    from segml.persistence import _BASIC_TYPES, _skops_schema, _SkopsReader

    rng = np.random.default_rng(3)
    X = pd.DataFrame({"recency": rng.uniform(0, 1, 300), "spend": rng.gamma(2.0, 10.0, 300)})
    y = (rng.uniform(size=300) < X["recency"]).astype(int)
    for calibration in ("isotonic", "sigmoid"):
        model = ChurnModel(max_iter=10, calibration_method=calibration, random_state=0).fit(X, y)
        path = tmp_path / f"{calibration}.skops"
        dump_skops(model.calibrated_, path)
        ours = _SkopsReader(path, frozenset(TRUSTED_TYPES) | _BASIC_TYPES).read(_skops_schema(path))
        theirs = sio.load(path, trusted=sorted(set(TRUSTED_TYPES) | _BASIC_TYPES))
        _same(ours, theirs)
        values = X.to_numpy()  # the classifier is fitted on arrays, as ChurnModel passes them
        np.testing.assert_array_equal(
            ours.predict_proba(values), model.calibrated_.predict_proba(values)
        )
        loaded = load_skops(path, trusted=TRUSTED_TYPES)
        np.testing.assert_array_equal(
            loaded.predict_proba(values), model.calibrated_.predict_proba(values)
        )


def test_node_kinds_segmls_reader_does_not_build_are_left_to_skops(tmp_path):
    from collections import OrderedDict

    path = tmp_path / "state.skops"
    saved = {"rng": np.random.RandomState(7), "order": OrderedDict(b=1, a=2)}
    dump_skops(saved, path)
    loaded = load_skops(path, trusted=["collections.OrderedDict"])
    assert loaded["order"] == saved["order"] and type(loaded["order"]) is OrderedDict
    assert loaded["rng"].randint(1000) == np.random.RandomState(7).randint(1000)
