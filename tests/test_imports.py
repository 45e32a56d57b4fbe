"""What importing segml and its command line costs: only what the command needs.

Each check runs in a fresh interpreter (``sys.modules`` of the test process is
shared with every other test) and looks at which modules got imported: a behaviour,
not a timing.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("sklearn", "scipy", "mlflow", "matplotlib", "skops", "pyspark", "pandas", "numpy")


def _imported_after(code: str) -> list[str]:
    listed = f"sorted(m for m in {HEAVY!r} if m in sys.modules)"
    probe = f"{code}\nimport json, sys\nprint(json.dumps({listed}))"
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.parametrize(
    "code",
    [
        "import segml",
        "import segml.cli",
        # Typer builds every command's options when the app runs: --help of the
        # heaviest command must still import none of the libraries it scores with.
        "from typer.testing import CliRunner\nfrom segml.cli import app\n"
        "assert CliRunner().invoke(app, ['score', '--help']).exit_code == 0",
    ],
    ids=["import segml", "import segml.cli", "segml score --help"],
)
def test_import_loads_no_heavy_library(code):
    assert _imported_after(code) == []


def test_public_names_load_on_first_use():
    """``segml.X`` and ``from segml import X`` still give every public name."""
    code = (
        "import segml\n"
        "from segml import CLVModel, rfm_summary\n"
        "assert segml.CLVModel is CLVModel and CLVModel.__module__ == 'segml.models.clv'\n"
        "assert rfm_summary is segml.features.rfm_summary\n"
        "assert all(getattr(segml, name) is not None for name in segml.__all__)\n"
        "assert set(segml.__all__) <= set(dir(segml))\n"
        "try:\n    segml.no_such_name\nexcept AttributeError as exc:\n"
        "    assert 'no_such_name' in str(exc)\nelse:\n    raise SystemExit('no error')\n"
    )
    # CLVModel needs scipy, loaded on use; scikit-learn only when a model fits with it.
    assert _imported_after(code) == ["numpy", "pandas", "scipy"]
