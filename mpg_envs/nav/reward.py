"""The depth-window reward of the navigation envs: a pure NumPy function of a depth map."""

from __future__ import annotations

import math

import numpy as np

#: Depths are clipped to this many metres and divided by it (MiniWorld's far plane is 5000 m;
#: rooms are < 30 m). PEDRA clips AirSim's depth image the same way (at 50 of its units).
MAX_DEPTH = 10.0
#: PEDRA's window scale ``thresh`` (50 for its indoor environments): ``n = max(g * thresh / 3, 1)``.
WINDOW_SCALE = 50.0
#: PEDRA averages the nearest 5% of the window's depths (its ``fract_min``).
FRACT_MIN = 0.05


def depth_window_reward(
    depth: np.ndarray, *, max_depth: float = MAX_DEPTH, thresh: float = WINDOW_SCALE
) -> float:
    """Paper 004's reward: the near depth of a dynamic window ahead (PEDRA's ``avg_depth``).

    Paper 004 (App. C.1) computes its reward "based on dynamic windowing of the simulated depth
    map ... as used in Anwar and Raychowdhury (2018)"; the authors' simulator PEDRA
    (``network/agent.py``: ``get_CustomDepth``, ``avg_depth`` and ``reward_gen``) does this, and
    so do we, step for step:

    1. clip depths to ``max_depth`` and divide by it (values in [0, 1]); ``g`` = their mean;
    2. ``n = max(g * thresh / 3, 1)``: the more open the view, the smaller the window;
    3. the centre window has size ``(H / n, W / n)``; its top row is
       ``int(0.9 * H * (n - 1) / (2 n))`` (PEDRA: "scale by 0.9 to select the window towards top
       from the mid line"), its left column ``int(W * (n - 1) / (2 n))``; bounds are rounded as
       PEDRA rounds them (``int(round(.))``, the right edge capped at ``W``);
    4. reward = the mean of the nearest ``FRACT_MIN`` = 5% of the window's values (at least one
       value: PEDRA's ``np.round(0.05 * len)`` is 0 for windows under 10 pixels and its mean then
       NaN), 0 for an all-zero or empty window. In a fully open view (``n`` = 50/3) the window
       is ``3 n / 50``-th of the image, under one pixel below 17 pixels: keep ``resolution`` >= 17.

    PEDRA's reward is this centre value C; it also computes left and right windows for its
    display only. Its ``reward_gen`` ends the episode when C falls below a per-environment crash
    threshold; our envs end it at an actual collision instead (MiniWorld refuses the move).

    Args:
        depth: Depth map, shape ``(H, W)`` or ``(H, W, 1)`` (MiniWorld's ``render_depth()``),
            finite and non-negative.
        max_depth: Clip distance in metres (> 0).
        thresh: PEDRA's window scale (> 0; 50 in PEDRA).

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
    d = np.minimum(d, float(max_depth)) / float(max_depth)
    H, W = d.shape
    n = max(float(d.mean()) * float(thresh) / 3.0, 1.0)
    gh, gw = H / n, W / n
    top = max(int(0.9 * H * (n - 1) / (2 * n)), 0)
    left = max(int(W * (n - 1) / (2 * n)), 0)
    window = d[int(round(top)) : int(round(top + gh)), int(round(left)) : min(int(round(left + gw)), W)]
    if not window.any():
        return 0.0
    near = np.sort(window, axis=None)
    k = max(int(np.round(FRACT_MIN * near.size)), 1)
    return float(near[:k].mean())
