"""MLflow "models from code" entry point of segml's scoring model.

MLflow runs this file to build the model when it is loaded: nothing is unpickled.
The model's only artifact is a folder written by
:meth:`segml.scoring.CustomerScorer.save` (JSON parameters and skops files loaded
with an explicit trust list).
"""

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class SegmlScoringModel(PythonModel):
    """Scores customers from their features with a saved :class:`CustomerScorer`."""

    def load_context(self, context) -> None:
        from segml.scoring import CustomerScorer

        self._scorer = CustomerScorer.load(context.artifacts["scorer"])

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        from segml.tracking._model import predict_with_ids

        return predict_with_ids(self._scorer, model_input)


mlflow.models.set_model(SegmlScoringModel())
