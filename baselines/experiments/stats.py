"""The statistics behind every verdict of the reproductions, written once.

* Fractions of runs ("13 of 30 end at an equilibrium") come with a Wilson score interval
  (:func:`wilson`, :func:`fraction`): at n = 30 a count is uncertain by about +-17 points.
* Means come with standard errors over runs with ``ddof = 1`` (:func:`mean_se`).
* Comparisons of two methods on the same seeds are paired: the per-seed difference, its mean, its
  t interval and a two-sided paired t-test (:func:`paired`). A verdict word ("higher", "lower",
  "tie") comes from the interval (:func:`paired_verdict`), never from comparing two means.
* A short run (``reproduce`` without ``--full``) has too few seeds or iterations to decide what
  the full run decides: its verdicts say so (:func:`quick_label`).

Every function takes plain lists or arrays and returns JSON-able values, so a summary stores the
per-run records and these functions re-derive every number from them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as _st

__all__ = [
    "CONFIDENCE",
    "wilson",
    "fraction",
    "fmt_fraction",
    "mean_se",
    "paired",
    "paired_verdict",
    "fmt_paired",
    "fmt_interval",
    "quick_label",
    "QUICK_NOTE",
]

#: Confidence level of every interval the reproductions report.
CONFIDENCE = 0.95

#: Appended to verdicts of a short run (``reproduce`` without ``--full``).
QUICK_NOTE = "quick run: too few seeds/iterations to decide; see --full"


def _z(conf: float) -> float:
    return float(_st.norm.ppf(0.5 + conf / 2))


def wilson(k: int, n: int, conf: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion ``k / n``.

    Args:
        k: Successes, ``0 <= k <= n``.
        n: Trials, ``n >= 1``.
        conf: Confidence level in (0, 1).

    Returns:
        (low, high), both in [0, 1].

    Raises:
        ValueError: ``n < 1`` or ``k`` outside ``[0, n]``.
    """
    if n < 1 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n and n >= 1, got k={k}, n={n}")
    z = _z(conf)
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    # at k = 0 or k = n the interval touches 0 or 1 exactly (round-off would leave 1e-17)
    lo = 0.0 if k == 0 else max(0.0, centre - half)
    hi = 1.0 if k == n else min(1.0, centre + half)
    return lo, hi


def fraction(flags: Sequence[bool], conf: float = CONFIDENCE) -> dict:
    """A fraction of runs with its Wilson interval.

    Args:
        flags: One bool per run.
        conf: Confidence level.

    Returns:
        ``{"k", "n", "fraction", "low", "high"}``.
    """
    n, k = len(flags), int(sum(bool(f) for f in flags))
    lo, hi = wilson(k, n, conf)
    return {"k": k, "n": n, "fraction": k / n, "low": lo, "high": hi}


def fmt_fraction(f: dict) -> str:
    """``"13/30 (95% CI 27-61%)"`` for a :func:`fraction` dict."""
    return f"{f['k']}/{f['n']} (95% CI {100 * f['low']:.0f}-{100 * f['high']:.0f}%)"


def mean_se(x: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (``ddof = 1``; 0 for a single value).

    Args:
        x: Values, shape (n,), n >= 1.
    """
    a = np.asarray(x, dtype=float)
    if a.size == 0:
        raise ValueError("mean_se needs at least one value")
    se = float(a.std(ddof=1) / math.sqrt(a.size)) if a.size > 1 else 0.0
    return float(a.mean()), se


def paired(a: Sequence[float], b: Sequence[float], conf: float = CONFIDENCE) -> dict:
    """Paired comparison of two methods run on the same seeds: the per-seed difference ``a - b``.

    Args:
        a: Method A's value per seed, shape (n,).
        b: Method B's value on the same seeds, shape (n,).
        conf: Confidence level of the t interval.

    Returns:
        ``{"n", "mean", "se", "low", "high", "p", "a_higher", "b_higher", "ties"}``: the mean
        difference, its standard error (ddof = 1), the t interval, the two-sided paired t-test's
        p-value (1.0 when every difference is 0; None for a single seed, so that summaries stay
        strict JSON and compare equal after a round trip) and the seed counts.

    Raises:
        ValueError: Lengths differ or are 0.
    """
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if x.shape != y.shape or x.ndim != 1 or x.size == 0:
        raise ValueError(f"paired needs two equal-length non-empty sequences, got {x.shape} and {y.shape}")
    d = x - y
    n = d.size
    mean, se = mean_se(d)
    p: float | None
    if n < 2:
        lo = hi = mean
        p = None
    elif se == 0.0:
        lo = hi = mean
        p = 1.0 if mean == 0.0 else 0.0
    else:
        t = float(_st.t.ppf(0.5 + conf / 2, n - 1))
        lo, hi = mean - t * se, mean + t * se
        p = float(2 * _st.t.sf(abs(mean / se), n - 1))
    return {
        "n": int(n),
        "mean": mean,
        "se": se,
        "low": float(lo),
        "high": float(hi),
        "p": p,
        "a_higher": int((d > 0).sum()),
        "b_higher": int((d < 0).sum()),
        "ties": int((d == 0).sum()),
    }


def paired_verdict(p: dict, a: str = "A", b: str = "B", scale: float = 0.0) -> str:
    """The verdict of a :func:`paired` result from its interval.

    Args:
        p: A :func:`paired` dict.
        a: Name of method A.
        b: Name of method B.
        scale: Differences whose whole interval lies within ``+-scale`` are called a tie even when
            significant (round-off, or below what matters); 0 to use significance only.

    Returns:
        ``"<a> higher"`` when the interval lies above 0, ``"<b> higher"`` when below, else
        ``"no significant difference"``.
    """
    if p["n"] < 2:
        return "one seed: cannot decide"
    if scale > 0 and max(abs(p["low"]), abs(p["high"])) <= scale:
        return "no difference that matters"
    if p["low"] > 0:
        return f"{a} higher"
    if p["high"] < 0:
        return f"{b} higher"
    return "no significant difference"


def fmt_paired(p: dict, digits: int = 2) -> str:
    """``"+0.013 (95% CI -0.016 to 0.042, p = 0.35, n = 20)"`` for a :func:`paired` dict."""
    from baselines.experiments.common import fmt

    sign = "+" if p["mean"] > 0 else ""
    pv = "p -" if p["p"] is None else (f"p = {p['p']:.2g}" if p["p"] >= 1e-4 else "p < 1e-4")
    return (
        f"{sign}{fmt(p['mean'], digits)} (95% CI {fmt(p['low'], digits)} to {fmt(p['high'], digits)}, "
        f"{pv}, n = {p['n']})"
    )


def fmt_interval(p: dict, digits: int = 2) -> str:
    """``"+0.013 [-0.016, 0.042]"``: a :func:`paired` mean difference and its 95% interval, compactly."""
    from baselines.experiments.common import fmt

    sign = "+" if p["mean"] > 0 else ""
    return f"{sign}{fmt(p['mean'], digits)} [{fmt(p['low'], digits)}, {fmt(p['high'], digits)}]"


def quick_label(text: str, full: bool) -> str:
    """A verdict as printed: unchanged for a full run, marked as undecided for a short one."""
    return text if full else f"{text} [{QUICK_NOTE}]"
