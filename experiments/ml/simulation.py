"""How simulated viewers react to a page (pure numpy): true affinity and position → click, play, completion.

A viewer looks down the list with a position bias of 1 / log2(position + 1); a title's appeal is the
logistic of its standardised true affinity (the synthetic world's hidden factors). A click leads to a play,
and a play to a completion, more often the more the viewer truly likes the title.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass(frozen=True)
class BehaviourModel:
    affinity_mean: float  # of true affinities over random (viewer, title) pairs: standardises the scale
    affinity_std: float
    click_slope: float = 1.5
    click_offset: float = -2.5
    play_slope: float = 1.0
    play_offset: float = 1.0
    complete_slope: float = 1.2
    complete_offset: float = -0.2

    @classmethod
    def calibrated(cls, sample_affinities: np.ndarray, **overrides: float) -> BehaviourModel:
        values = np.asarray(sample_affinities, np.float64)
        return cls(float(values.mean()), float(values.std() or 1.0), **overrides)

    def probabilities(self, affinity: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """P(click), P(play | click), P(complete | play) for titles at 1-based `positions`."""
        z = (np.asarray(affinity, np.float64) - self.affinity_mean) / self.affinity_std
        bias = 1.0 / np.log2(np.asarray(positions, np.float64) + 1.0)
        click = bias * _sigmoid(self.click_slope * z + self.click_offset)
        play = _sigmoid(self.play_slope * z + self.play_offset)
        complete = _sigmoid(self.complete_slope * z + self.complete_offset)
        return click, play, complete

    def react(
        self, affinity: np.ndarray, positions: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(clicked, played, completed, watch share) per title, each bool/float (k,)."""
        p_click, p_play, p_complete = self.probabilities(affinity, positions)
        draws = rng.random((4, len(p_click)))
        clicked = draws[0] < p_click
        played = clicked & (draws[1] < p_play)
        completed = played & (draws[2] < p_complete)
        watched = np.where(completed, 1.0, np.where(played, 0.05 + 0.6 * draws[3], 0.0))
        return clicked, played, completed, watched
