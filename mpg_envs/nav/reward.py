"""The depth-window reward of the navigation envs: a pure NumPy function of a depth map."""

from __future__ import annotations

import math

import numpy as np

#: Depths are clipped to this many metres (MiniWorld's far plane is 5000; rooms are < 30 m).
MAX_DEPTH = 10.0


def depth_window_reward(depth: np.ndarray, *, max_depth: float = MAX_DEPTH, thresh: float = 1.0) -> float:
    """Mean depth of a central window whose size depends on how open the view is (dynamic windowing).

    Paper 004 (App. C.1) computes its reward "based on dynamic windowing of the simulated depth
    map ... to encourage the drone to stay away from obstacles, as used in Anwar and Raychowdhury
    (2018)" and gives no formula. This is the rule of that line of work as we implement it:

    1. clip depths to ``[0, max_depth]`` and take the global mean ``g``;
    2. ``n = max(g * thresh / 3, 1)``: the more open the view, the more cells the image is cut
       into, so the window shrinks towards the centre (far away, only what lies straight ahead
       matters; close to walls the whole view counts);
    3. the window is the central ``ceil(H / n) x ceil(W / n)`` block (centred; when the block and
       the image differ in parity the extra row/column goes to the bottom/right);
    4. reward = mean depth in the window / ``max_depth``, in ``[0, 1]``.

    Args:
        depth: Depth map, shape ``(H, W)`` or ``(H, W, 1)`` (MiniWorld's ``render_depth()``),
            finite and non-negative.
        max_depth: Clip distance in metres (> 0).
        thresh: Window scale (> 0); larger -> smaller windows in open views.

    Returns:
        The reward, a float in ``[0, 1]``.

    Raises:
        ValueError: Bad shape, empty map, NaN/inf/negative depths, or bad ``max_depth``/``thresh``.
    """
    d = np.asarray(depth, dtype=np.float64)
    if d.ndim == 3 and d.shape[2] == 1:
        d = d[:, :, 0]
    if d.ndim != 2 or d.size == 0:
        raise ValueError(f"depth must have shape (H, W) or (H, W, 1) with H, W >= 1; got shape {d.shape}")
    for name, value in (("max_depth", max_depth), ("thresh", thresh)):
        if not (isinstance(value, (int, float)) and not isinstance(value, bool)) or not (
            math.isfinite(value) and value > 0
        ):
            raise ValueError(f"{name} must be a finite number > 0; got {value!r}")
    if not np.isfinite(d).all() or (d < 0).any():
        raise ValueError("depth must be finite and >= 0 everywhere (got NaN, inf or a negative depth)")
    d = np.minimum(d, float(max_depth))
    h, w = d.shape
    n = max(float(d.mean()) * float(thresh) / 3.0, 1.0)
    wh, ww = max(1, math.ceil(h / n)), max(1, math.ceil(w / n))
    top, left = (h - wh) // 2, (w - ww) // 2
    return float(d[top : top + wh, left : left + ww].mean() / float(max_depth))
