"""Example functions for the example sweeps; any importable callable can take their place."""

from __future__ import annotations

import math
import time

import numpy as np

__all__ = ["BOWL_MINIMUM", "bowl", "noisy_training_loss", "placeholder", "rosenbrock"]


def rosenbrock(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """The classic banana valley; its minimum is f = 0 at (1, 1)."""
    return {"f": (1 - x) ** 2 + 100 * (y - x * x) ** 2}


# Irrational on every axis, so no grid of rational steps ever lands on it.
BOWL_MINIMUM = (math.sqrt(2) - 1, math.pi / 4, -math.e / 3)


def bowl(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> dict[str, np.ndarray]:
    """A smooth 3-D bowl whose minimum f = 0 is at BOWL_MINIMUM: the refine example's."""
    a, b, c = BOWL_MINIMUM
    return {"f": (x - a) ** 2 + 2 * (y - b) ** 2 + 3 * (z - c) ** 2}


def noisy_training_loss(
    lr: np.ndarray, momentum: np.ndarray, batch: np.ndarray, noise: np.ndarray
) -> dict[str, np.ndarray]:
    """A stand-in for a training run's final loss, for random search over hyperparameters.

    Best near lr = 3e-3 and momentum = 0.9; larger batches shrink the noise. `noise` is a
    standard-normal random axis, so repeated samples of a grid point give a spread.
    """
    log_lr = np.log10(lr)
    loss = 0.1 + 0.5 * (log_lr + 2.5) ** 2 + 4.0 * (momentum - 0.9) ** 2
    spread = 0.05 / np.sqrt(batch / 32.0)
    diverged = (lr > 0.03) & (momentum > 0.95)
    loss = np.where(diverged, np.inf, loss + spread * noise)
    return {"loss": loss, "diverged": diverged}


def placeholder(param: int, work_ms: float = 0.0) -> dict[str, float]:
    """The old per-parameter worker's computation, one parameter at a time.

    Replace the body with your algorithm. `work_ms` simulates work per parameter, as the
    old worker's SIMULATE_WORK_MS did.
    """
    if work_ms > 0:
        time.sleep(work_ms / 1000.0)
    return {"result": math.sqrt(param) * math.sin(param)}
