"""Training against a real MLflow tracking server, started and stopped by the test."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient

from segml.datasets import load_cdnow
from segml.scoring import customer_features
from segml.tracking import cast_to_signature, train
from segml.transactions import load_transactions
from tests.test_tracking import MODEL_NAME, sample_config


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`mlflow server` on a free loopback port, its own SQLite store and artifact folder."""
    folder = tmp_path_factory.mktemp("server")
    port = _free_port()
    mlflow_cli = Path(sys.executable).with_name("mlflow")
    log_file = open(folder / "server.log", "wb")  # noqa: SIM115 - closed after the server
    process = subprocess.Popen(
        [
            str(mlflow_cli),
            "server",
            "--backend-store-uri",
            f"sqlite:///{folder}/server.db",
            "--artifacts-destination",
            str(folder / "artifacts"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        cwd=folder,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
                if response.status == 200:
                    break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            log = (folder / "server.log").read_text(errors="replace")[-2000:]
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            log_file.close()
            pytest.fail(f"mlflow server did not start on {uri}:\n{log}")
        time.sleep(0.5)
    yield uri, folder
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    log_file.close()


def test_train_registers_on_a_tracking_server_and_the_model_loads_from_it(
    server, tmp_path, monkeypatch
):
    uri, folder = server
    monkeypatch.chdir(tmp_path)  # nothing may land in the working directory
    result = train(sample_config(), tracking_uri=uri, promote=True)
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(result.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["run.as_of"] == "1998-06-30"
    aliases = client.get_registered_model(MODEL_NAME).aliases
    assert {k: str(v) for k, v in aliases.items()} == {"candidate": "1", "champion": "1"}
    assert list((folder / "artifacts").rglob("segment_map.json"))  # stored by the server
    assert not (tmp_path / "mlruns").exists() and not (tmp_path / "mlflow.db").exists()

    monkeypatch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
    mlflow.set_tracking_uri(uri)
    model = mlflow.pyfunc.load_model(f"models:/{MODEL_NAME}@champion")
    clean, _ = load_transactions(load_cdnow(sample=True), drop_duplicates=False)
    features = customer_features(clean, as_of="1998-06-30")
    scored = model.predict(cast_to_signature(features, result.scorer.feature_columns_))
    expected = result.scorer.predict(features)
    np.testing.assert_allclose(scored["clv"], expected["clv"], rtol=1e-12)
    assert scored["risk_band"].tolist() == expected["risk_band"].tolist()
