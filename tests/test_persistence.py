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
