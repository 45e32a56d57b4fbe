"""Collection rules for the whole tree (tests/ and the doctests in segml/)."""

# MLflow runs this file itself when it loads the scoring model ("models from code");
# importing it outside MLflow would register a model as a side effect.
collect_ignore = ["segml/tracking/_pyfunc_entry.py"]
