"""Training against a real MLflow tracking server, started and stopped by the test."""

from __future__ import annotations

import base64
import http.client
import http.server
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

import mlflow
import numpy as np
import pytest
import yaml
from mlflow import MlflowClient

from segml.datasets import load_cdnow
from segml.scoring import customer_features
from segml.tracking import TrackingError, cast_to_signature, check_tracking_uri, train
from segml.tracking._store import mlflow_session
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


# --- A tracking server behind HTTP Basic auth -------------------------------------
#
# MLflow's own auth app (`mlflow server --app-name basic-auth`) needs Flask-WTF, which
# is not a dependency; the same protocol is served here by a small real HTTP proxy
# that requires `Authorization: Basic ...` on every request and forwards it to the
# real `mlflow server` above.

USER, PASSWORD = "alice", "s3cret-Pa55"


class _BasicAuthProxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream: tuple[str, int]
    seen: list[str]

    def _forward(self) -> None:
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        self.seen.append(f"{self.command} {self.path} {self.headers.get('Authorization')}")
        if self.headers.get("Authorization") != expected:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="mlflow"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        headers = {
            k: v
            for k, v in self.headers.items()
            if k.lower() not in ("host", "authorization", "connection", "content-length")
        }
        connection = http.client.HTTPConnection(*self.upstream, timeout=120)
        try:
            connection.request(self.command, self.path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        self.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _forward

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        pass  # quiet


@pytest.fixture(scope="module")
def auth_server(server):
    """(address without credentials, seen requests) of a Basic-auth proxy to `server`."""
    uri, _ = server
    upstream = urllib.parse.urlsplit(uri)
    handler = type(
        "Proxy", (_BasicAuthProxy,), {"upstream": (upstream.hostname, upstream.port), "seen": []}
    )
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{proxy.server_address[1]}", handler.seen
    proxy.shutdown()
    proxy.server_close()
    thread.join()


def test_the_health_check_sends_the_uris_credentials(auth_server):
    address, seen = auth_server
    check_tracking_uri(f"http://{USER}:{PASSWORD}@{address}")  # passes: 200 on /health
    expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    assert seen[-1] == f"GET /health {expected}"  # a header, not part of the host name
    with pytest.raises(TrackingError, match="refused the credentials") as refused:
        check_tracking_uri(f"http://{USER}:wrong-pw@{address}")
    assert "wrong-pw" not in str(refused.value)
    assert f"http://{USER}:***@{address}" in str(refused.value)
    with pytest.raises(TrackingError, match=r"refused the credentials \(401 on /health\)"):
        check_tracking_uri(f"http://{address}")


def test_train_through_basic_auth_never_shows_the_password(auth_server, tmp_path):
    address, seen = auth_server
    uri = f"http://{USER}:{PASSWORD}@{address}"
    config = tmp_path / "configs" / "run.yaml"
    config.parent.mkdir()
    (tmp_path / "data").mkdir()
    load_cdnow(sample=True).to_csv(tmp_path / "data" / "log.csv", index=False)
    settings = sample_config(experiment_name="auth", registered_model_name="auth-scorer")
    settings["data"] = {"source": "../data/log.csv", "name": "sample file"}
    config.write_text(yaml.safe_dump(settings))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    trained = subprocess.run(
        [str(Path(sys.executable).with_name("segml")), "train", "--config", str(config)],
        cwd=tmp_path,
        env={**env, "MLFLOW_TRACKING_URI": uri},  # the password arrives by the variable
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert trained.returncode == 0, trained.stderr
    output = trained.stdout + trained.stderr
    assert PASSWORD not in output
    run_id = trained.stdout.strip().splitlines()[-1]
    assert any(run_id in line for line in seen)  # it went through the proxy

    with mlflow_session(uri) as plain:
        client = MlflowClient(tracking_uri=plain)
        run = client.get_run(run_id)
        dataset = run.inputs.dataset_inputs[0].dataset
    assert run.info.status == "FINISHED"
    logged = [*run.data.params.values(), *run.data.tags.values(), dataset.source]
    assert not any(PASSWORD in value for value in logged)
    # Paths are relative to the config's folder, not this machine's layout.
    assert run.data.params["data.source"] == "../data/log.csv"
    assert json.loads(dataset.source) == {"uri": "../data/log.csv"}
    assert run.data.tags["mlflow.source.name"] == "segml train"
    assert not any(str(tmp_path) in value for value in logged)


def test_a_full_disk_while_logging_is_one_error_and_a_failed_run(server, tmp_path):
    # The training machine's disk fills up (simulated by a file size limit of 16 KB,
    # with SIGXFSZ ignored so writes fail with EFBIG as they would with ENOSPC) while
    # the run logs to a server, whose own disk is fine.
    uri, _ = server
    config = tmp_path / "run.yaml"
    config.write_text(
        yaml.safe_dump(sample_config(experiment_name="full", registered_model_name="full"))
    )

    def full_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (16_000, 16_000))

    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    trained = subprocess.run(
        [str(Path(sys.executable).with_name("segml")), "train", "--config", str(config)],
        cwd=tmp_path,
        env={**env, "MLFLOW_TRACKING_URI": uri},
        preexec_fn=full_disk,  # noqa: PLW1509 - only sets a limit, no threads involved
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert trained.returncode == 1, trained.stderr
    assert "Traceback" not in trained.stderr
    errors = [line for line in trained.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, trained.stderr
    assert "Writing the run's files failed: File too large" in errors[0]
    assert "was marked FAILED and no model version was registered" in errors[0]
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("full")
    runs = client.search_runs([experiment.experiment_id])
    assert [run.info.status for run in runs] == ["FAILED"]
    assert runs[0].info.run_id in errors[0]
    assert client.search_model_versions("name='full'") == []


def test_a_server_that_is_down_fails_within_15_seconds(tmp_path):
    # A closed port refuses at once; a port that accepts connections but never
    # answers is given up after the health check's timeout. Before, MLflow retried
    # for about 250 s.
    closed = _free_port()
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel accepts; nobody ever reads or answers
        hanging = silent.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        for port, reason in ((closed, "Connection refused"), (hanging, "timed out")):
            started = time.monotonic()
            listed = subprocess.run(
                [
                    str(Path(sys.executable).with_name("segml")),
                    "runs",
                    "--tracking-uri",
                    f"http://{USER}:{PASSWORD}@127.0.0.1:{port}",
                ],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            elapsed = time.monotonic() - started
            assert listed.returncode == 1
            assert elapsed < 15, f"{elapsed:.1f} s for a server that is down ({reason})"
            message = " ".join(listed.stderr.split())
            assert f"Cannot reach the MLflow tracking server at http://{USER}:***@127.0.0.1:" in (
                message
            )
            assert reason in message and PASSWORD not in listed.stderr
