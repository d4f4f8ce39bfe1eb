"""Argument checks shared by every env, the model and the exact analysis.

Each helper takes a parameter's name and value, returns the value normalised (a Python ``int`` or
``float``, a float64 array, a ``numpy.random.Generator``) and otherwise raises with a message that
names the parameter, the bad value (its ``repr``) and what is allowed, e.g.
``slip must be a probability in [0, 1], got True``.

Conventions:

* Booleans are not numbers: ``True`` is refused wherever a number is expected.
* NumPy scalars and 0-d arrays count as the scalars they hold (``np.int64(3)``, ``np.array(0.5)``).
* A value of the wrong type raises :class:`ArgumentTypeError`, which is both a ``TypeError`` and a
  ``ValueError`` (so ``except ValueError`` still catches every invalid argument); a value of the
  right type but out of range raises ``ValueError``.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

__all__ = [
    "ArgumentTypeError",
    "TooLargeError",
    "MAX_BYTES_ENV",
    "max_bytes",
    "check_bytes",
    "gib",
    "show",
    "is_integer",
    "is_real",
    "integer",
    "positive_int",
    "real",
    "finite_real",
    "probability",
    "discount",
    "one_of",
    "flag",
    "seed",
    "generator",
    "real_array",
    "int_array",
    "distribution",
    "low_precision",
    "sum_tolerance",
    "options_dict",
    "format_count",
]

_REPR_LIMIT = 160


class ArgumentTypeError(TypeError, ValueError):
    """An argument of the wrong type (a ``TypeError`` that ``except ValueError`` also catches)."""


def show(value: Any) -> str:
    """The value's repr, shortened in the middle beyond 160 characters (huge lists, arrays)."""
    try:
        r = repr(value)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not hide the real error
        r = f"<{type(value).__name__} object>"
    if len(r) > _REPR_LIMIT:
        r = f"{r[: _REPR_LIMIT - 40]} ... {r[-30:]}"
    return r


def _typed(value: Any) -> str:
    """``repr (type)`` for type errors, e.g. ``'4' (str)``."""
    return f"{show(value)} ({type(value).__name__})"


def _unwrap(value: Any) -> Any:
    """A 0-d array -> the NumPy scalar it holds; anything else unchanged."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        return value[()]
    return value


def is_integer(value: Any) -> bool:
    """An int or NumPy integer (or a 0-d integer array), not a bool."""
    value = _unwrap(value)
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def is_real(value: Any) -> bool:
    """A real number (int, float, NumPy integer or floating, 0-d arrays of them), not a bool."""
    value = _unwrap(value)
    if isinstance(value, (bool, np.bool_)):
        return False
    return isinstance(value, (numbers.Real, np.integer, np.floating))


def integer(
    name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None, what: str | None = None
) -> int:
    """An integer in [minimum, maximum] (either bound optional), as a Python int.

    Args:
        name: Parameter name for the message.
        value: The argument.
        minimum: Smallest allowed value, or None.
        maximum: Largest allowed value, or None.
        what: Description of what is allowed (default built from the bounds).

    Raises:
        ArgumentTypeError: Not an integer (floats such as 2.0 and bools included).
        ValueError: Out of range.
    """
    if what is None:
        if minimum is not None and maximum is not None:
            what = f"an integer in [{minimum:,}, {maximum:,}]"
        elif minimum == 1:
            what = "a positive integer"
        elif minimum is not None:
            what = f"an integer >= {minimum:,}"
        elif maximum is not None:
            what = f"an integer <= {maximum:,}"
        else:
            what = "an integer"
    if not is_integer(value):
        raise ArgumentTypeError(f"{name} must be {what}, got {_typed(value)}")
    v = int(_unwrap(value))
    if (minimum is not None and v < minimum) or (maximum is not None and v > maximum):
        raise ValueError(f"{name} must be {what}, got {show(value)}")
    return v


def positive_int(name: str, value: Any, *, maximum: int | None = None, what: str | None = None) -> int:
    """An integer >= 1 (and <= maximum if given); see :func:`integer`.

    Above ``maximum`` the message gives the limit: ``n_agents must be a positive integer of at most
    100,000, got 1000000``.
    """
    v = integer(name, value, minimum=1, what=what)
    if maximum is not None and v > maximum:
        raise ValueError(
            f"{name} must be {what or 'a positive integer'} of at most {maximum:,}, got {show(value)}"
        )
    return v


def real(
    name: str,
    value: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    what: str | None = None,
) -> float:
    """A finite real number in an interval (bounds optional, closed unless ``*_open``), as a float.

    Raises:
        ArgumentTypeError: Not a real number (bools, strings, None, sequences included).
        ValueError: NaN, infinite or outside the interval.
    """
    if what is None:
        if low is None and high is None:
            what = "a finite number"
        else:
            lo = "-inf" if low is None else f"{low:g}"
            hi = "inf" if high is None else f"{high:g}"
            left = "(" if low_open or low is None else "["
            right = ")" if high_open or high is None else "]"
            what = f"a number in {left}{lo}, {hi}{right}"
    if not is_real(value):
        raise ArgumentTypeError(f"{name} must be {what}, got {_typed(value)}")
    try:
        v = float(_unwrap(value))
    except OverflowError:  # an int beyond float range
        v = math.inf if _unwrap(value) > 0 else -math.inf
    bad = not math.isfinite(v)
    if low is not None:
        bad = bad or v < low or (low_open and v == low)
    if high is not None:
        bad = bad or v > high or (high_open and v == high)
    if bad:
        raise ValueError(f"{name} must be {what}, got {show(value)}")
    return v


def finite_real(name: str, value: Any, *, what: str = "a finite number") -> float:
    """Any finite real number, as a float; see :func:`real`."""
    return real(name, value, what=what)


def probability(name: str, value: Any) -> float:
    """A probability in [0, 1], as a float; see :func:`real`."""
    return real(name, value, low=0.0, high=1.0, what="a probability in [0, 1]")


def discount(name: str, value: Any, *, allow_one: bool = True, why: str = "") -> float:
    """A discount factor in (0, 1] (or (0, 1) with ``allow_one=False``), as a float.

    Args:
        name: Parameter name (usually ``"gamma"``).
        value: The argument.
        allow_one: Whether 1 is allowed.
        why: Appended to the message, e.g. why 1 is refused.
    """
    what = "in (0, 1]" if allow_one else "in (0, 1)"
    suffix = f" ({why})" if why else ""
    if not is_real(value):
        raise ArgumentTypeError(f"{name} must be a number {what}, got {_typed(value)}{suffix}")
    v = float(_unwrap(value))
    if not (0.0 < v < 1.0 or (allow_one and v == 1.0)):
        raise ValueError(f"{name} must be {what}, got {show(value)}{suffix}")
    return v


def one_of(name: str, value: Any, options: Sequence[Any]) -> Any:
    """One of a few allowed values (compared with ``==``, of the same type)."""
    for o in options:
        if type(value) is type(o) and value == o:
            return value
    raise ValueError(f"{name} must be one of {list(options)}, got {show(value)}")


def flag(name: str, value: Any) -> bool:
    """A bool (or NumPy bool)."""
    value = _unwrap(value)
    if not isinstance(value, (bool, np.bool_)):
        raise ArgumentTypeError(f"{name} must be True or False, got {_typed(value)}")
    return bool(value)


def seed(value: Any, name: str = "seed") -> int | None:
    """A seed for ``reset``: None or a non-negative integer (NumPy integers accepted), as int."""
    if value is None:
        return None
    return integer(name, value, minimum=0, what="None or a non-negative integer")


def generator(rng: Any, name: str = "rng") -> np.random.Generator:
    """A ``numpy.random.Generator`` from a Generator, None (fresh entropy) or a non-negative int seed.

    An int seed gives ``np.random.default_rng(seed)``, so the same seed gives the same draws.
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None:
        return np.random.default_rng()
    if isinstance(rng, np.random.SeedSequence):
        return np.random.default_rng(rng)
    s = integer(name, rng, minimum=0, what="a numpy.random.Generator, None or a non-negative integer seed")
    return np.random.default_rng(s)


def _array(name: str, value: Any, what: str) -> np.ndarray:
    """``np.asarray(value)`` with a clear error for ragged or non-numeric input."""
    if value is None or isinstance(value, (str, bytes, Mapping)):
        raise ArgumentTypeError(f"{name} must be {what}, got {_typed(value)}")
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError):  # ragged nested sequences
        raise ArgumentTypeError(f"{name} must be {what}, got {show(value)}") from None
    return arr


def _first_item(value: Any, bad: Any) -> Any:
    """The first item of nested lists/tuples for which ``bad(item)`` holds, or None."""
    if not isinstance(value, (list, tuple)):
        return None
    stack = [iter(value)]
    while stack:
        for x in stack[-1]:
            if isinstance(x, (list, tuple)):
                stack.append(iter(x))
                break
            if bad(x):
                return x
        else:
            stack.pop()
    return None


def _first_bool(value: Any) -> Any:
    """The first bool inside nested lists/tuples (NumPy converts them silently to 0/1), or None."""
    return _first_item(value, lambda x: isinstance(x, (bool, np.bool_)))


def real_array(
    name: str,
    value: Any,
    *,
    shape: tuple[int, ...] | None = None,
    ndim: int | None = None,
    finite: bool = True,
    what: str | None = None,
) -> np.ndarray:
    """A float64 array of real numbers (no bools, strings or objects), optionally of a fixed shape.

    Args:
        name: Parameter name.
        value: Array-like of real numbers.
        shape: Required shape, or None.
        ndim: Required number of dimensions, or None.
        finite: Refuse NaN and infinities.
        what: Description of what is allowed (default built from shape/ndim).

    Returns:
        A new or existing float64 array.
    """
    if what is None:
        what = "an array of real numbers"
        if shape is not None:
            what = f"an array of real numbers of shape {shape}"
        elif ndim is not None:
            what = f"a {ndim}-d array of real numbers"
    arr = _array(name, value, what)
    first = _first_bool(value)
    if first is not None:
        raise ArgumentTypeError(f"{name} must be {what}, got {show(value)} (contains the bool {first!r})")
    if arr.dtype == bool or not (
        np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)
    ):
        if arr.dtype == object or arr.dtype.kind in "USV":  # find the offending element for the message
            bad = _first_item(value, lambda x: not is_real(x))  # the item as given, not as NumPy cast it
            if bad is None:
                bad = next((x for x in arr.ravel() if not is_real(x)), None)
            if bad is not None or arr.dtype.kind in "USV":
                bad = bad.item() if isinstance(bad, np.generic) else bad
                raise ArgumentTypeError(f"{name} must be {what}, got {show(value)} (contains {show(bad)})")
            arr = arr.astype(np.float64)
        else:
            raise ArgumentTypeError(f"{name} must be {what}, got {show(value)} (dtype {arr.dtype})")
    if shape is not None and arr.shape != tuple(shape):
        raise ValueError(f"{name} must be {what}, got shape {arr.shape}: {show(value)}")
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must be {what}, got shape {arr.shape}: {show(value)}")
    arr = np.asarray(arr, dtype=np.float64)
    if finite and arr.size and not np.all(np.isfinite(arr)):
        idx = np.unravel_index(int(np.flatnonzero(~np.isfinite(arr))[0]), arr.shape)
        at = ", ".join(map(str, idx))
        where = (f"{name}[{at}]" if name.isidentifier() else f"entry [{at}]") if arr.ndim else "the value"
        raise ValueError(f"{name} has non-finite entries, e.g. {where} = {float(arr[idx])!r}")
    return arr


def int_array(
    name: str, value: Any, *, shape: tuple[int, ...] | None = None, what: str | None = None
) -> np.ndarray:
    """An int64 array of integers (no bools or floats), optionally of a fixed shape."""
    what = what or ("an integer array" if shape is None else f"an integer array of shape {shape}")
    arr = _array(name, value, what)
    if arr.dtype == bool or not np.issubdtype(arr.dtype, np.integer):
        if arr.dtype == object and arr.size and all(is_integer(x) for x in arr.ravel()):
            arr = arr.astype(np.int64)
        else:
            raise ArgumentTypeError(f"{name} must be {what}, got {show(value)} (dtype {arr.dtype})")
    if shape is not None and arr.shape != tuple(shape):
        raise ValueError(f"{name} must be {what}, got shape {arr.shape}: {show(value)}")
    return arr.astype(np.int64, copy=False)


#: Sums of low-precision (float32, float16) probabilities may be off by this many ulps per entry.
LOW_PRECISION_ULPS = 100


def low_precision(value: Any) -> np.dtype | None:
    """The dtype of a floating array below float64 precision (e.g. float32), else None."""
    dtype = getattr(value, "dtype", None)
    if dtype is not None and np.issubdtype(dtype, np.floating) and np.dtype(dtype).itemsize < 8:
        return np.dtype(dtype)
    return None


def sum_tolerance(dtype: np.dtype | None, n: Any, base: float) -> Any:
    """Tolerance of a sum of ``n`` probabilities: ``base`` for float64 (or exact) input, and
    ``max(base, LOW_PRECISION_ULPS * eps(dtype) * n)`` for a low-precision dtype."""
    if dtype is None:
        return base
    return np.maximum(base, LOW_PRECISION_ULPS * float(np.finfo(dtype).eps) * np.asarray(n, dtype=np.float64))


def distribution(name: str, value: Any, size: int, *, tol: float = 1e-9) -> np.ndarray:
    """A probability vector of length ``size``: real, finite, non-negative, summing to 1.

    The sum may be off by ``tol``, or for float32/float16 input by :func:`sum_tolerance`; such
    low-precision input is returned in float64, renormalised.
    """
    what = f"a probability vector of shape ({size},)"
    p = real_array(name, value, what=what, finite=True)
    if p.shape != (size,):
        raise ValueError(f"{name} must be {what}, got shape {p.shape}: {show(value)}")
    if size and p.min() < 0:
        i = int(p.argmin())
        raise ValueError(f"{name} must be non-negative, got {name}[{i}] = {float(p[i])!r}")
    low = low_precision(value)
    total = float(p.sum())
    if abs(total - 1.0) > sum_tolerance(low, size, tol):
        raise ValueError(f"{name} must sum to 1, got a sum of {total!r}: {show(value)}")
    return p / total if low is not None else p


def options_dict(name: str, value: Any) -> Mapping[str, Any]:
    """``reset(options=...)``: None (no options) or a mapping."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ArgumentTypeError(f"{name} must be None or a dict such as {{'state': 0}}, got {_typed(value)}")
    return value


def format_count(n: int) -> str:
    """An exact integer with thousands separators, or ``~10^k`` when it has more than 30 digits.

    Never converts to float, so it cannot overflow on huge Python ints.
    """
    n = int(n)
    if n.bit_length() <= 100:
        return f"{n:,}"
    digits = n.bit_length() * math.log10(2)
    return f"~10^{int(digits)}"


# ------------------------------------------------------------------------------------ memory
MAX_BYTES_ENV = "MPG_MAX_BYTES"
DEFAULT_MAX_BYTES = 2 * 2**30


class TooLargeError(ValueError):
    """Raised *before* allocating something whose estimated size exceeds the memory limit.

    The limit is :func:`max_bytes`: 2 GiB unless the environment variable ``MPG_MAX_BYTES`` sets
    another number of bytes (e.g. ``MPG_MAX_BYTES=16e9`` on a large machine).
    """


def max_bytes() -> int:
    """The memory limit in bytes: ``$MPG_MAX_BYTES`` (a positive number) or 2 GiB."""
    import os

    raw = os.environ.get(MAX_BYTES_ENV)
    if raw is None or raw.strip() == "":
        return DEFAULT_MAX_BYTES
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not (math.isfinite(value) and value >= 1):
        raise ValueError(f"{MAX_BYTES_ENV} must be a positive number of bytes (e.g. 8e9), got {raw!r}")
    return int(value)


def gib(nbytes: int) -> str:
    """A byte count in GiB for messages: ``"1.5"``, ``"3.20e+07"``, or ``~10^k`` for huge counts
    (never a float overflow)."""
    whole = nbytes // 2**30
    if whole < 10**6:
        return f"{nbytes / 2**30:,.1f}"
    return f"{float(whole):.2e}" if whole.bit_length() < 1000 else format_count(whole)


def check_bytes(what: str, nbytes: Any, *, advice: str, limit: int | None = None) -> int:
    """Refuse, before allocating it, ``what`` whose estimated size is ``nbytes``.

    Args:
        what: What would be allocated, with its shape, e.g. ``"the sampler's rollouts of shape
            (B, T, N) = (100000000, 20, 2)"``.
        nbytes: The estimate in bytes: an exact Python int (compute it from Python ints, never from
            NumPy ones, so that huge sizes cannot overflow).
        advice: What the user can change, e.g. ``"use a smaller batch"``.
        limit: The limit in bytes; default :func:`max_bytes`.

    Returns:
        ``nbytes`` as an int.

    Raises:
        TooLargeError: ``nbytes`` exceeds the limit; the message gives both sizes.
    """
    nbytes = int(nbytes)
    limit = max_bytes() if limit is None else int(limit)
    if nbytes > limit:
        raise TooLargeError(
            f"{what} would take ~{gib(nbytes)} GiB, over the memory limit of {gib(limit)} GiB "
            f"(set {MAX_BYTES_ENV} to raise it); {advice}"
        )
    return nbytes
