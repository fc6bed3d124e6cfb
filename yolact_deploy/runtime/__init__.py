"""One inference API over every backend: ``load_predictor(path).predict(images)``."""
from .predictor import BACKENDS, Predictor, PredictionOutput, backend_for_path, load_predictor

__all__ = ['BACKENDS', 'Predictor', 'PredictionOutput', 'backend_for_path', 'load_predictor']
