"""Tidy records: arrays of a batch of runs -> long frames (one row per run and point).

Every problem kind records curves the same way, so divergence and stopping are handled in
one place: a run's records end at its ``stop_step``, and a run that stopped between two
recorded points gets one more row at its stopping step (its values there), so a curve
always ends where its run ended.

Example:
    >>> import numpy as np
    >>> records(np.array(["a", "b"]), np.array([0, 10, 20]), np.array([20, 15]),
    ...         {"loss": np.array([[3.0, 2.0, 1.0], [3.0, 2.5, np.nan]])},
    ...         at_stop={"loss": np.array([1.0, 2.2])})
      run_id  step  loss
    0      a     0   3.0
    1      a    10   2.0
    2      a    20   1.0
    3      b     0   3.0
    4      b    10   2.5
    5      b    15   2.2
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd


def records(
    run_ids: np.ndarray,
    steps: np.ndarray,
    stop: np.ndarray,
    values: Mapping[str, np.ndarray],
    *,
    at_stop: Mapping[str, np.ndarray] | None = None,
    index: Mapping[str, np.ndarray] | None = None,
) -> pd.DataFrame:
    """Rows ``(run_id, step, *index, *values)`` for each run up to its stopping step.

    Args:
        run_ids: ``[R]``.
        steps: ``[P]`` the step of each recorded point, increasing.
        stop: ``[R]`` the step where each run stopped (its last step if it never did).
        values: name -> ``[R, P]`` values at the points (written as float64).
        at_stop: name -> ``[R]`` values at the stopping step; with it, a run that stopped
            before the last point and between two points gets a row at its stopping step.
        index: name -> ``[P]`` more per-point columns placed after ``step`` (``epoch``).
    """
    n_runs, n_points = len(run_ids), len(steps)
    keep = (steps[None, :] <= stop[:, None]).ravel()
    frame = pd.DataFrame(
        {
            "run_id": np.repeat(run_ids, n_points)[keep],
            "step": np.tile(steps, n_runs)[keep],
            **{k: np.tile(np.asarray(v), n_runs)[keep] for k, v in (index or {}).items()},
            **{k: np.asarray(v, np.float64).ravel()[keep] for k, v in values.items()},
        }
    )
    if at_stop is None:
        return frame
    extra = (stop < steps[-1]) & ~np.isin(stop, steps)
    if not extra.any():
        return frame
    tail = pd.DataFrame(
        {
            "run_id": run_ids[extra],
            "step": stop[extra],
            **{k: np.asarray(v, np.float64)[extra] for k, v in at_stop.items()},
        }
    )
    order = np.r_[np.repeat(np.arange(n_runs), n_points)[keep], np.flatnonzero(extra)]
    frame = pd.concat([frame, tail], ignore_index=True)
    return frame.iloc[np.lexsort((frame["step"].to_numpy(), order))].reset_index(drop=True)
