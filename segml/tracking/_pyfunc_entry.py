"""MLflow "models from code" entry point of segml's scoring model.

``mlflow.pyfunc.load_model`` runs this file to build the model: nothing is unpickled.
The model's only artifact is a folder written by
:meth:`segml.scoring.CustomerScorer.save` (JSON parameters; older models' skops files
are loaded with an explicit trust list), checked and loaded by the installed segml's
:func:`segml.tracking._load.load_scorer_artifact`.

MLflow executes the copy of this file that sits in the model folder. segml's own
loader (``segml score``, :func:`segml.tracking._load.load_scoring_model`) never
does: it builds the model from the artifact with the installed code only.
"""

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class SegmlScoringModel(PythonModel):
    """Scores customers from their features with a saved :class:`CustomerScorer`."""

    def load_context(self, context) -> None:
        from segml.tracking._load import load_scorer_artifact

        self._scorer = load_scorer_artifact(context.artifacts["scorer"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        from segml.tracking._model import predict_with_ids

        # as_of, the inference parameter of the signature: the day the features were
        # computed at, from which the next-purchase dates count.
        return predict_with_ids(self._scorer, model_input, as_of=(params or {}).get("as_of"))


mlflow.models.set_model(SegmlScoringModel())
