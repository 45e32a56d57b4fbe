"""Where runs go: MLflow's embedded SQLite store by default, or a tracking server.

Every command that talks to MLflow goes through this module first:

- :func:`check_tracking_uri` (``train``): the URI is one segml uses, and a server
  answers before anything is fitted or logged.
- :func:`require_existing_store` (``runs``, ``score``, anything that only reads):
  the same, and an embedded store must already exist -- opening a missing SQLite
  file would silently create an empty store.
- :func:`prepare_store` (``train``): create and migrate a new SQLite store under a
  file lock, so two runs started at once on a new store both succeed.
- :func:`mlflow_session`: the URI MLflow should see (credentials moved out of it into
  MLflow's own variables) with bounded HTTP retries, for the duration of our calls.
- :func:`redact_uri`: the URI as every message shows it (``http://user:***@host``).
"""

from __future__ import annotations

import base64
import os
import re
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = [
    "TrackingError",
    "check_tracking_uri",
    "fail_stale_runs",
    "mlflow_session",
    "prepare_store",
    "process_tags",
    "redact_text",
    "redact_uri",
    "require_existing_store",
    "sqlite_path",
    "store_lock",
]

#: The store a run or a model URI uses when neither an option nor
#: ``MLFLOW_TRACKING_URI`` names one: a SQLite file in the working directory.
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"

#: How long the server health check waits for an answer. A server that is down
#: (refused connection) fails at once; one that accepts but never answers, after this.
HEALTH_TIMEOUT_SECONDS = 5.0

# MLflow retries a failing request 7 times with exponential backoff (factor 2) and a
# 120 s timeout per attempt: about 250 s before a down server is reported. Within
# segml's calls the retries are bounded (unless the user set these variables).
_HTTP_LIMITS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}

_SECRET_QUERY_KEYS = re.compile(r"(?i)^(password|passwd|pwd|token|secret|access_token|api_key)$")


class TrackingError(RuntimeError):
    """The tracking store or registry cannot be used as asked; nothing was registered."""


def redact_uri(uri: str) -> str:
    """The URI with its password (and secret query values) replaced by ``***``.

    Parameters
    ----------
    uri : str
        A tracking or registry URI, possibly with ``user:password@`` in it.

    Returns
    -------
    str
        The URI safe to print or log; unchanged when it holds no secret.

    Examples
    --------
    >>> redact_uri("http://alice:s3cret@mlflow.example.com:5000")
    'http://alice:***@mlflow.example.com:5000'
    >>> redact_uri("postgresql://bob:p%40ss@db:5432/mlflow?sslmode=require")
    'postgresql://bob:***@db:5432/mlflow?sslmode=require'
    >>> redact_uri("sqlite:///mlflow.db")
    'sqlite:///mlflow.db'
    >>> redact_uri("https://host/?token=abc")
    'https://host/?token=***'
    """
    if "://" not in uri:
        return uri
    scheme, _, rest = uri.partition("://")
    # The authority ends at the first "/", "?" or "#"; a password may itself hold "@",
    # so the userinfo ends at the LAST "@" of the authority.
    end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:end], rest[end:]
    if "@" in authority:
        userinfo, _, host = authority.rpartition("@")
        if ":" in userinfo:
            user = userinfo.split(":", 1)[0]
            authority = f"{user}:***@{host}"
    if "?" in tail:
        path, _, query = tail.partition("?")
        query, hash_sep, fragment = query.partition("#")
        parts = []
        for item in query.split("&"):
            key, eq, value = item.partition("=")
            parts.append(f"{key}=***" if eq and _SECRET_QUERY_KEYS.match(key) else item)
        tail = f"{path}?{'&'.join(parts)}{hash_sep}{fragment}"
    return f"{scheme}://{authority}{tail}"


def redact_text(text: str, uri: str) -> str:
    """``text`` with the URI, and its password wherever it appears, redacted.

    For messages of other libraries that may quote the URI or the credentials.

    Examples
    --------
    >>> redact_text("cannot reach http://u:pw@h/api", "http://u:pw@h")
    'cannot reach http://u:***@h/api'
    """
    text = text.replace(uri, redact_uri(uri))
    password = _credentials(uri)[1]
    if password:
        for secret in {password, urllib.parse.quote(password, safe="")}:
            text = text.replace(secret, "***")
    return text


def _credentials(uri: str) -> tuple[str | None, str | None]:
    """(user, password) of the URI's userinfo, percent-decoded."""
    parts = urllib.parse.urlsplit(uri)
    if "@" not in parts.netloc:
        return None, None
    userinfo = parts.netloc.rpartition("@")[0]
    user, sep, password = userinfo.partition(":")
    return urllib.parse.unquote(user), (urllib.parse.unquote(password) if sep else None)


def _without_userinfo(uri: str) -> str:
    parts = urllib.parse.urlsplit(uri)
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=host))


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (None for other URIs or in-memory).

    Examples
    --------
    >>> str(sqlite_path("sqlite:///runs/mlflow.db"))
    'runs/mlflow.db'
    >>> sqlite_path("http://127.0.0.1:5000") is None
    True
    """
    if not uri.startswith("sqlite:///"):
        return None
    path = uri.removeprefix("sqlite:///").split("?", 1)[0]
    return None if path in ("", ":memory:") else Path(path)


def _check_server(uri: str, timeout_seconds: float) -> None:
    """GET /health, with the URI's credentials as a Basic Authorization header.

    urllib does not turn ``user:pass@`` into a header (it takes it as part of the
    host name), so the credentials are sent explicitly and removed from the URL.
    """
    shown = redact_uri(uri)
    user, password = _credentials(uri)
    if user is None:  # MLflow's own variables, as MLflow would send them
        user = os.environ.get("MLFLOW_TRACKING_USERNAME")
        password = os.environ.get("MLFLOW_TRACKING_PASSWORD")
    base = _without_userinfo(uri)
    health = urllib.parse.urlsplit(base)._replace(query="", fragment="")
    health = urllib.parse.urlunsplit(health).rstrip("/") + "/health"
    request = urllib.request.Request(health)
    if user is not None:
        token = base64.b64encode(f"{user}:{password or ''}".encode()).decode("ascii")
        request.add_header("Authorization", f"Basic {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout_seconds) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
        exc.close()
    except OSError as exc:  # URLError, refused, timed out
        reason = getattr(exc, "reason", exc)
        raise TrackingError(
            f"Cannot reach the MLflow tracking server at {shown} "
            f"({redact_text(str(reason), uri)}). Start it, fix --tracking-uri / "
            "MLFLOW_TRACKING_URI, or omit it to use the embedded store sqlite:///mlflow.db."
        ) from None
    if status == 401:
        raise TrackingError(
            f"The MLflow tracking server at {shown} refused the credentials (401 on /health): "
            "put user:password in the URI, or set MLFLOW_TRACKING_USERNAME and "
            "MLFLOW_TRACKING_PASSWORD."
        )
    if status != 200:
        raise TrackingError(f"The MLflow tracking server at {shown} answered {status} on /health.")


def check_tracking_uri(uri: str, *, timeout_seconds: float = HEALTH_TIMEOUT_SECONDS) -> None:
    """Refuse URIs that would lose runs; for a server, check that it answers.

    MLflow 3 blocks the plain file store; segml never falls back to it. A server
    that is down is reported before any run is started, so nothing is half-logged.

    Raises
    ------
    TrackingError
        A ``file://`` URI or plain path, or a server that does not answer /health
        with 200 within ``timeout_seconds``. The message shows the URI redacted.
    """
    if uri.startswith(("http://", "https://")):
        _check_server(uri, timeout_seconds)
        return
    if uri.startswith(("sqlite:///", "postgresql", "mysql", "mssql", "databricks")):
        return
    raise TrackingError(
        f"Tracking URI {redact_uri(uri)!r} is not supported: use sqlite:///PATH (the embedded "
        "store) or http(s)://HOST:PORT (a tracking server). The plain file store (./mlruns) "
        "is not used: MLflow 3 deprecates it."
    )


def require_existing_store(uri: str, *, timeout_seconds: float = HEALTH_TIMEOUT_SECONDS) -> None:
    """For commands that only read runs or models: the store must already exist.

    Opening a missing SQLite file would create an empty store and then report
    "no experiment" or "no registered model", which hides a wrong path; nothing is
    created here. ``file://`` URIs and plain paths are refused, and a server must
    answer /health within ``timeout_seconds`` (a closed port fails at once).

    Raises
    ------
    TrackingError
        As :func:`check_tracking_uri`, or no SQLite file at the URI's path.
    """
    check_tracking_uri(uri, timeout_seconds=timeout_seconds)
    database = sqlite_path(uri)
    if database is not None and not database.is_file():
        raise TrackingError(
            f"No MLflow store at {database.resolve()}: train first (segml train), or "
            "point --tracking-uri / MLFLOW_TRACKING_URI at the store that holds the runs."
        )


@contextmanager
def mlflow_session(uri: str) -> Iterator[str]:
    """Environment for MLflow calls on ``uri``; yields the URI to hand to MLflow.

    - An http(s) URI's ``user:password@`` moves into ``MLFLOW_TRACKING_USERNAME`` /
      ``MLFLOW_TRACKING_PASSWORD`` (how MLflow sends Basic auth), so the password is
      in no URL MLflow builds, prints ("View run at ...") or stores.
    - MLflow's HTTP retries are bounded (2 retries, 30 s per request) unless the
      user set those variables: a server that dies mid-run fails in under a minute,
      not after four.

    Everything is restored on exit.
    """
    changes: dict[str, str] = {}
    mlflow_uri = uri
    if uri.startswith(("http://", "https://")):
        for name, value in _HTTP_LIMITS.items():
            if name not in os.environ:
                changes[name] = value
        user, password = _credentials(uri)
        if user is not None:
            mlflow_uri = _without_userinfo(uri)
            changes["MLFLOW_TRACKING_USERNAME"] = user
            changes["MLFLOW_TRACKING_PASSWORD"] = password or ""
    before = {name: os.environ.get(name) for name in changes}
    os.environ.update(changes)
    try:
        yield mlflow_uri
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """An exclusive lock on ``<db>.lock`` beside a SQLite store (nothing for others).

    Processes on one machine that create, migrate or set up the same store take
    turns; a lock file is used (not the database) because MLflow's migration opens
    its own connections.
    """
    database = sqlite_path(uri)
    if database is None:
        yield
        return
    import fcntl

    database.parent.mkdir(parents=True, exist_ok=True)
    lock_path = database.with_name(database.name + ".lock")
    with open(lock_path, "a") as lock:  # noqa: PTH123 - a file descriptor for flock
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def prepare_store(uri: str) -> None:
    """Create or migrate a SQLite store under :func:`store_lock`, before MLflow uses it.

    MLflow creates a new store's tables (and runs its schema migrations) on first
    use; two processes doing that at once fail in the migration ("table already
    exists"). Here one process does it while the other waits, then finds it done.
    Other stores (servers, databases) manage their own schema.
    """
    database = sqlite_path(uri)
    if database is None:
        return
    from mlflow.store.model_registry.sqlalchemy_store import (
        SqlAlchemyStore as RegistryStore,
    )
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as TrackingStore

    artifacts = (database.resolve().parent / "mlruns").as_uri()
    with store_lock(uri):
        if _has_every_table(database):
            return  # opening the stores only to find that costs 1-2 s
        try:
            TrackingStore(uri, artifacts)
            RegistryStore(uri)
        except Exception as exc:  # noqa: BLE001 - any failure here is the store's
            raise TrackingError(
                f"Cannot open or create the MLflow store {redact_uri(uri)}: "
                f"{redact_text(str(exc).splitlines()[0] if str(exc) else repr(exc), uri)}"
            ) from None


# Run tags that tie a run to the process that logs it (see fail_stale_runs).
PID_TAG = "segml.pid"
HOST_TAG = "segml.host"


def process_tags() -> dict[str, str]:
    """Tags recording which process on which machine runs a training run."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


def _process_started_at(pid: int) -> float | None:
    """Start time (epoch seconds) of a live process; None if it is gone or a zombie.

    Read from /proc where there is one (Linux); elsewhere a live pid counts as
    started at the epoch (the run is then always taken as the process's own).
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, another user's
        pass
    stat = Path(f"/proc/{pid}/stat")
    try:
        fields = stat.read_text().rpartition(")")[2].split()
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
    except (OSError, StopIteration):
        return 0.0
    if fields[0] in ("Z", "X"):  # killed, not yet reaped: gone for our purpose
        return None
    # Field 22 of /proc/PID/stat (index 19 after the command): start time in clock
    # ticks after boot (proc(5)).
    return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")


def fail_stale_runs(client, experiment_ids: list[str]) -> list[str]:
    """Mark RUNNING runs whose process is gone FAILED; delete their unaliased versions.

    A run whose process was killed (SIGKILL, power loss, a full disk that stopped it
    before it could record the failure) stays RUNNING forever and a nightly job
    cannot tell it from one in progress. A run is stale when it was started on this
    machine (``segml.host`` tag) by a process (``segml.pid``) that no longer exists,
    or whose pid now belongs to a process started after the run (pid reused). Runs
    of live processes, of other machines, and runs without those tags (other tools)
    are left alone.

    Returns
    -------
    list of str
        One line per run marked FAILED, saying why (for the user to read).
    """
    from mlflow.exceptions import MlflowException

    here = socket.gethostname()
    notes = []
    runs = client.search_runs(experiment_ids, filter_string="attributes.status = 'RUNNING'")
    for run in runs:
        tags = run.data.tags
        if tags.get(HOST_TAG) != here or not tags.get(PID_TAG, "").isdigit():
            continue
        pid = int(tags[PID_TAG])
        started = _process_started_at(pid)
        # A second of slack: the run is created a moment after its process starts,
        # and /proc's start time is rounded to clock ticks.
        if started is not None and started <= run.info.start_time / 1000 + 1:
            continue
        run_id = run.info.run_id
        removed = []
        try:
            client.set_terminated(run_id, status="FAILED")
            versions = client.search_model_versions(f"run_id='{run_id}'")
            for version in versions:
                # search_model_versions leaves .aliases empty: the model has them.
                model = client.get_registered_model(version.name)
                if str(version.version) not in {str(v) for v in model.aliases.values()}:
                    client.delete_model_version(version.name, version.version)
                    removed.append(f"{version.name} version {version.version}")
        except MlflowException as exc:  # e.g. read-only access to a server
            notes.append(
                f"run {run_id} is RUNNING but its process {pid} on {here} is gone; it could "
                f"not be marked FAILED: {exc.message}"
            )
            continue
        notes.append(
            f"marked stale run {run_id} FAILED: it was RUNNING but its process {pid} on "
            f"{here} is gone"
            + (f"; deleted its unaliased registered {', '.join(removed)}" if removed else "")
            + "."
        )
    return notes


def _has_every_table(database: Path) -> bool:
    """Whether a SQLite store holds every table of MLflow's tracking and registry schema.

    The test MLflow's stores make before creating tables (``_all_tables_exist``),
    read here with sqlite3 so that an existing store is not opened twice. Any doubt
    (unreadable file, unknown MLflow layout) answers False: the stores are opened.
    """
    if not database.is_file() or database.stat().st_size == 0:
        return False
    import sqlite3
    from contextlib import closing

    try:
        import mlflow.store.model_registry.dbmodels.models  # noqa: F401 - registers tables
        import mlflow.store.tracking.dbmodels.models  # noqa: F401 - registers tables
        from mlflow.store.db.base_sql_model import Base

        with closing(sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30)) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        return set(Base.metadata.tables) <= tables and "alembic_version" in tables
    except (ImportError, AttributeError, sqlite3.Error):
        return False
