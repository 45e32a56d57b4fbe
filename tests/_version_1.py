"""Saved models in the formats earlier segml versions wrote, for the tests that
check those still load (and are checked as strictly as when they were current)."""

from __future__ import annotations

import json
from pathlib import Path

from segml.models.churn import ChurnModel
from segml.persistence import dump_skops


def save_churn_as_version_1(model: ChurnModel, directory: Path) -> Path:
    """``model`` (fitted in this process) as segml saved churn models before the
    trees were data: the calibrated classifier in a skops file named by
    ``classifier_file``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.save(directory)
    document = json.loads((directory / "churn_model.json").read_text())
    del document["trees"]
    document.update(format_version=1, classifier_file="churn_classifier.skops")
    (directory / "churn_model.json").write_text(json.dumps(document))
    dump_skops(model.calibrated_, directory / "churn_classifier.skops")
    return directory
