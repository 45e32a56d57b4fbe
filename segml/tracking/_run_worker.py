"""What a training run draws and measures after the fit, shared with a forked worker.

After the fit, a run draws its figures and ``report.html`` (matplotlib: single-
threaded Python, about 4 s of CPU on CDNOW), measures its predictive calibration
(:func:`segml.models._predictive.predictive_calibration`, about 4 s) and logs to
MLflow and saves the model (about 2 s). On Linux a worker process forked after the
fit measures the calibration and then draws figures, while the training process
logs and saves the model and then draws figures too: each figure is drawn by
whichever process claims it first (an exclusive-create file per figure), so the
two finish together whatever each part costs on the data at hand. The run then logs
the folder with one ``log_artifacts`` call, and the calibration's metrics.

Elsewhere (no ``fork``), or when the worker fails or stops for any reason, the
training process does the worker's part itself: what is logged is the same either
way, and a real error surfaces from the training process with its usual traceback.

Why fork and not spawn: the worker needs the fitted scorer and the clean log, which
a forked child shares with its parent page by page; nothing is pickled or copied.
What the child does is kept safe to fork: no import is left half done on another
thread when it starts (MLflow's imports are joined first), it never calls MLflow, it
never scores customers with the fitted models' OpenMP code (the scores are computed
before the fork), and it writes files only inside its own folder. The calibration
comes back as a JSON file.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["IMPORT_THREAD_NAME", "RunWorker"]

#: Seconds to wait for the worker once the training process has done its part; a
#: worker still busy by then is stopped and its part is done in-process.
WORKER_TIMEOUT_SECONDS = 600.0
#: The name of the thread that imports MLflow while a run fits (segml.tracking._train).
IMPORT_THREAD_NAME = "segml-import-mlflow"
_CLAIMS = ".claims"  # one empty file per figure: whoever creates it draws it
_DONE = "worker_done.json"  # written by the worker last: the figures it drew
_PREDICTIVE = "predictive.json"
_REPORT = "report.html"
_FIGURES = "figures"


def _encode(predictive: Mapping[str, Any] | None) -> str:
    """The predictive-calibration report as JSON (a frame as columns of plain lists).

    Python floats go through JSON exactly (shortest repr), so the training process
    logs the numbers the worker computed, bit for bit.

    Examples
    --------
    >>> table = pd.DataFrame({"bin": ["[0.0, 0.1)"], "n": [3], "mean_predicted": [0.05]})
    >>> back = _decode(_encode({"p_buy_brier": 0.1 + 0.2, "reliability": table}))
    >>> back["reliability"].equals(table), back["p_buy_brier"] == 0.1 + 0.2
    (True, True)
    """
    if predictive is None:
        return "null"
    document = {}
    for key, value in predictive.items():
        if isinstance(value, pd.DataFrame):
            document[key] = {"frame": {c: value[c].tolist() for c in value.columns}}
        else:
            document[key] = value
    return json.dumps(document)


def _decode(text: str) -> dict[str, Any] | None:
    document = json.loads(text)
    if document is None:
        return None
    return {
        key: pd.DataFrame(value["frame"]) if isinstance(value, dict) and "frame" in value else value
        for key, value in document.items()
    }


def _save(path: str, figure, folder: Path) -> None:
    """The figure as PNG at ``folder/figures/<path>``, as ``mlflow.log_figure`` writes it."""
    target = folder / _FIGURES / path
    target.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(target)  # the figure's own dpi, as mlflow.log_figure saves it


class RunWorker:
    """A run's figures, ``report.html`` and predictive calibration, made in ``folder``.

    Parameters
    ----------
    folder : Path
        An empty folder; the figures go under ``folder/figures``, the page to
        ``folder/report.html``.
    figures : callable
        ``figures()`` -> ``{path: draw}``, ``draw()`` -> a matplotlib Figure: the
        figures drawn from the fit alone, each drawn only when called.
    predictive : callable
        ``predictive()`` -> the predictive-calibration report (a dict of numbers and
        its ``reliability`` frame), or None when the run has none.
    late_figures : callable
        ``late_figures(predictive)`` -> ``{path: Figure}``: figures drawn from it.
    report : callable
        ``report()`` -> the HTML page, made by the training process in :meth:`finish`.

    Examples
    --------
    Without :meth:`start` everything is done in-process by :meth:`finish`:

    >>> import tempfile
    >>> from matplotlib.figure import Figure
    >>> def one(title):
    ...     figure = Figure(figsize=(2, 2))
    ...     figure.subplots().set_title(title)
    ...     return figure
    >>> folder = Path(tempfile.mkdtemp())
    >>> worker = RunWorker(folder, figures=lambda: {"a/one.png": lambda: one("one")},
    ...     predictive=lambda: {"x": 1.5},
    ...     late_figures=lambda p: {"a/two.png": one(str(p["x"]))},
    ...     report=lambda: "<p>page</p>")
    >>> done, predictive = worker.finish()
    >>> done == folder, predictive, sorted(p.name for p in (folder / "figures/a").iterdir())
    (True, {'x': 1.5}, ['one.png', 'two.png'])
    >>> (folder / "report.html").read_text()
    '<p>page</p>'
    """

    def __init__(
        self,
        folder: Path,
        *,
        figures: Callable[[], Mapping[str, Callable[[], Any]]],
        predictive: Callable[[], Mapping[str, Any] | None],
        late_figures: Callable[[Mapping[str, Any]], Mapping[str, Any]],
        report: Callable[[], str],
    ):
        self.folder = Path(folder)
        self._figures = figures
        self._predictive = predictive
        self._late_figures = late_figures
        self._report = report
        self._process = None
        self._tasks: list | None = None

    def _tasks_here(self) -> list:
        """The figure tasks as ``[(path, draw)]``, built once per process."""
        if self._tasks is None:
            self._tasks = list(self._figures().items())
        return self._tasks

    def _claim(self, index: int) -> bool:
        """Whether this process is the first to take figure ``index`` (atomic)."""
        try:
            os.close(os.open(self.folder / _CLAIMS / str(index), os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return False
        return True

    def _measure(self) -> None:
        """The predictive calibration to ``predictive.json``, and its figures."""
        predictive = self._predictive()
        if predictive is not None:
            for path, figure in self._late_figures(predictive).items():
                _save(path, figure, self.folder)
        # Written last: its presence says the late figures are there too.
        (self.folder / _PREDICTIVE).write_text(_encode(predictive))

    def _draw(self, order) -> list[int]:
        """Draw every figure not yet claimed, in ``order``; the indices drawn here."""
        drawn = []
        for index, (path, draw) in order(list(enumerate(self._tasks_here()))):
            if self._claim(index):
                _save(path, draw(), self.folder)
                drawn.append(index)
        return drawn

    # ------------------------------------------------------------ the worker
    def start(self) -> bool:
        """Fork the worker (Linux only); returns whether one runs.

        Call it after the fit, once the scores the figures need are computed.
        """
        (self.folder / _CLAIMS).mkdir(exist_ok=True)
        if sys.platform != "linux" or "fork" not in multiprocessing.get_all_start_methods():
            return False
        # An import half done on another thread would leave its module lock held in
        # the child: wait for the MLflow imports of this (or an earlier failed) run.
        for thread in threading.enumerate():
            if thread.name == IMPORT_THREAD_NAME and thread is not threading.current_thread():
                thread.join()
        context = multiprocessing.get_context("fork")
        self._process = context.Process(target=self._work, name="segml-run-worker", daemon=True)
        with warnings.catch_warnings():
            # Python >= 3.12 warns that fork() in a process with threads may deadlock
            # (a lock held by another thread stays held in the child). The child
            # takes no such lock: no MLflow, no OpenMP, no imports left half done.
            warnings.filterwarnings(
                "ignore",
                message=r".*use of fork\(\) may lead to deadlocks",
                category=DeprecationWarning,
            )
            try:
                self._process.start()
            except OSError:  # no memory or process slots for a child: work in-process
                self._process = None
                return False
        return True

    def _work(self) -> None:  # runs in the forked child
        # The parent's signal handlers are not the child's: a host that catches SIGTERM
        # must not keep close() waiting, and Ctrl-C in the terminal is the parent's
        # to handle (PySpark's handler would cancel jobs through the parent's socket).
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            self._measure()
            drawn = self._draw(lambda items: items)  # first to last
            (self.folder / _DONE).write_text(json.dumps(drawn))
            code = 0
        except BaseException:  # noqa: BLE001 - the parent does it again and raises it
            code = 1
        # No atexit handlers (MLflow's would end the parent's run), no flushing of
        # buffers the parent also holds: the child only wrote its own files.
        os._exit(code)

    # ------------------------------------------------------------ the parent
    def finish(self) -> tuple[Path, dict[str, Any] | None]:
        """Do this process's part, wait for the worker's; the folder and the calibration.

        The report first, then the figures the worker has not claimed (last to
        first); then the worker's part, here, if it failed or stopped. Raises
        whatever drawing or the calibration raises, from this process.
        """
        (self.folder / _CLAIMS).mkdir(exist_ok=True)
        (self.folder / _REPORT).write_text(self._report(), encoding="utf-8")
        mine = set(self._draw(lambda items: items[::-1]))
        if self._process is not None:
            self._process.join(WORKER_TIMEOUT_SECONDS)
            worked = self._process.exitcode == 0 and (self.folder / _DONE).is_file()
            self.close()
            if worked and (self.folder / _PREDICTIVE).is_file():
                theirs = set(json.loads((self.folder / _DONE).read_text()))
                if mine | theirs == set(range(len(self._tasks_here()))):
                    return self.folder, _decode((self.folder / _PREDICTIVE).read_text())
        # No worker, or it failed or stopped: its part here, over whatever it left.
        (self.folder / _PREDICTIVE).unlink(missing_ok=True)
        self._measure()
        for index, (path, draw) in enumerate(self._tasks_here()):
            if index not in mine:
                _save(path, draw(), self.folder)
        # The numbers as the worker passes them (through JSON): the same either way.
        return self.folder, _decode((self.folder / _PREDICTIVE).read_text())

    def close(self) -> None:
        """Stop the worker if it still runs (the run failed, or finished without it)."""
        if self._process is not None:
            if self._process.is_alive():
                self._process.terminate()
                self._process.join(5)
                if self._process.is_alive():
                    self._process.kill()
            self._process.join()
            self._process.close()
            self._process = None
