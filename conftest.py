"""Collection rules for the whole tree (tests/ and the doctests in segml/)."""

from importlib.util import find_spec

# MLflow runs this file itself when it loads the scoring model ("models from code");
# importing it outside MLflow would register a model as a side effect.
collect_ignore = ["segml/tracking/_pyfunc_entry.py"]

# The Spark path is an optional extra (pip install -e ".[spark]"): without pyspark its
# modules cannot be imported, so their doctests are not collected.
if find_spec("pyspark") is None:
    collect_ignore_glob = ["segml/spark/*"]
