"""Short ``repr`` for result objects that hold arrays (``print(nash_gap(...))`` prints one line,
not every entry of a (N, S) array).

Arrays show their shape, dtype and range; short 1-D arrays (per-agent values) show their entries;
lists of equal-shaped arrays show how many there are.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["concise_repr", "short", "Raw"]

#: 1-D arrays up to this size show their entries (N per-agent values).
MAX_SHOWN = 8


class Raw(str):
    """Text shown as it is (no quotes) by :func:`short`."""


def _num(x: Any) -> str:
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    return f"{float(x):.4g}"


def short(value: Any) -> str:
    """A one-line description of ``value``: numbers to 4 significant digits, arrays by shape,
    dtype and range, containers by length."""
    if value is None or isinstance(value, (bool, np.bool_)):
        return str(value if value is None else bool(value))
    if isinstance(value, (int, float, np.integer, np.floating)):
        return _num(value)
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, str):
        return repr(value)
    if hasattr(value, "shape") and hasattr(value, "dtype"):  # numpy or scipy sparse
        arr = value
        if isinstance(arr, np.ndarray) and arr.ndim == 0:
            return _num(arr.item()) if arr.dtype.kind in "biuf" else repr(str(arr.item()))
        small = isinstance(arr, np.ndarray) and arr.ndim == 1 and arr.size <= MAX_SHOWN
        if small and arr.dtype.kind in "biuf":
            return "[" + ", ".join(_num(x) for x in arr.tolist()) + "]"
        text = f"array({tuple(arr.shape)}, {arr.dtype}"
        if isinstance(arr, np.ndarray) and arr.size and arr.dtype.kind in "iuf":
            finite = arr[np.isfinite(arr)] if arr.dtype.kind == "f" else arr
            if finite.size:
                text += f", range [{_num(finite.min())}, {_num(finite.max())}]"
            if finite.size < arr.size:
                text += f", {arr.size - finite.size} not finite"
        return text + ")"
    if isinstance(value, (list, tuple)):
        if not value:
            return "[]"
        shapes = {getattr(v, "shape", None) for v in value}
        if all(isinstance(v, np.ndarray) for v in value) and len(shapes) == 1:
            return f"{len(value)} x array({tuple(value[0].shape)}, {value[0].dtype})"
        kinds = {type(v).__name__ for v in value}
        if len(kinds) == 1 and not isinstance(value[0], (int, float, str, np.number)):
            return f"{len(value)} x {kinds.pop()}"
        if len(value) <= MAX_SHOWN:
            return "[" + ", ".join(short(v) for v in value) + "]"
        return f"list of {len(value)}"
    if isinstance(value, dict):
        if len(value) <= 6:
            return "{" + ", ".join(f"{k!r}: {short(v)}" for k, v in value.items()) + "}"
        return f"dict of {len(value)} keys"
    return type(value).__name__


def concise_repr(obj: Any, **fields: Any) -> str:
    """``ClassName(name=short(value), ...)`` for the given fields, in order."""
    return f"{type(obj).__name__}(" + ", ".join(f"{k}={short(v)}" for k, v in fields.items()) + ")"
