"""Probability calibration measured on the training hold-out: how often the model is right at each probability.

Training fits it (training.calibration) and stores it in the artifact's metadata; the model-quality check
applies it to the probabilities of captured predictions to estimate accuracy and ROC AUC before labels arrive.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel

if TYPE_CHECKING:
    import numpy as np

# positive_class (binary): P(label is classes[1]) as a function of the model's probability of classes[1].
# top_class (multiclass): P(the predicted class is right) as a function of the largest probability.
CalibrationKind = Literal["positive_class", "top_class"]


class Calibration(BaseModel):
    """A monotone map from the model's score to the observed frequency, as piecewise-linear knots."""

    kind: CalibrationKind
    method: Literal["isotonic"] = "isotonic"
    rows: int  # hold-out rows it was measured on
    scores: list[float]  # knots, increasing
    outcomes: list[float]  # the observed frequency at each knot, in [0, 1]

    def apply(self, scores: np.ndarray) -> np.ndarray:
        """Calibrated probabilities of the scores; beyond the outer knots the outer values hold."""
        import numpy as np  # the serving path imports contracts without numpy work

        return np.interp(np.asarray(scores, dtype=np.float64), self.scores, self.outcomes)
