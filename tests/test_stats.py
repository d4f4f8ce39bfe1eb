"""The statistics behind the reproductions' verdicts, against independent oracles: published Wilson
intervals, the coverage of the interval by simulation, and scipy's paired t-test."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as st

from baselines.experiments.stats import (
    fmt_fraction,
    fmt_paired,
    fraction,
    mean_se,
    paired,
    paired_verdict,
    quick_label,
    wilson,
)


def test_wilson_matches_published_values():
    # Newcombe (1998), Statistics in Medicine 17, Table I: 81/263 -> 0.2553-0.3662; 15/148 -> 0.0624-0.1605
    lo, hi = wilson(81, 263)
    assert (round(lo, 4), round(hi, 4)) == (0.2553, 0.3662)
    lo, hi = wilson(15, 148)
    assert (round(lo, 4), round(hi, 4)) == (0.0624, 0.1605)
    # the ends touch 0 and 1 exactly; 0/10 -> upper 0.2775 (Newcombe's 0/20 -> 0.1611)
    assert wilson(0, 20)[0] == 0.0 and round(wilson(0, 20)[1], 4) == 0.1611
    assert wilson(10, 10)[1] == 1.0


def test_wilson_covers_the_true_proportion_about_95_percent_of_the_time():
    rng = np.random.default_rng(0)
    for p_true, n in [(0.43, 30), (0.1, 30), (0.7, 10)]:
        ks = rng.binomial(n, p_true, size=4000)
        cover = np.mean([lo <= p_true <= hi for lo, hi in (wilson(int(k), n) for k in ks)])
        assert 0.91 < cover < 0.99, (p_true, n, cover)


def test_wilson_refuses_bad_counts():
    for k, n in [(3, 2), (-1, 5), (0, 0)]:
        with pytest.raises(ValueError, match="0 <= k <= n"):
            wilson(k, n)


def test_fraction_and_its_text():
    f = fraction([True] * 13 + [False] * 17)
    assert (f["k"], f["n"]) == (13, 30) and f["fraction"] == pytest.approx(13 / 30)
    assert fmt_fraction(f) == "13/30 (95% CI 27-61%)"


def test_mean_se_uses_ddof_1():
    m, se = mean_se([1.0, 2.0, 3.0, 4.0])
    assert m == 2.5 and se == pytest.approx(np.std([1, 2, 3, 4], ddof=1) / 2)
    assert mean_se([5.0]) == (5.0, 0.0)


def test_paired_equals_scipys_paired_t_test():
    rng = np.random.default_rng(1)
    a = rng.normal(size=20)
    b = a - 0.2 + 0.5 * rng.normal(size=20)
    p = paired(a, b)
    ref = st.ttest_rel(a, b)
    assert p["p"] == pytest.approx(ref.pvalue, rel=1e-10)
    ci = ref.confidence_interval(0.95)
    assert (p["low"], p["high"]) == (pytest.approx(ci.low, rel=1e-10), pytest.approx(ci.high, rel=1e-10))
    assert p["a_higher"] + p["b_higher"] + p["ties"] == 20


def test_paired_verdicts_come_from_the_interval():
    up = paired([1.0, 2.0, 3.0, 4.0], [0.0, 1.1, 1.9, 3.0])
    assert paired_verdict(up, "NN", "tabular") == "NN higher"
    assert paired_verdict(paired([0, 1, 2.0], [1, 2, 3.1]), "NN", "tabular") == "tabular higher"
    tie = paired([1.0, 2.0, 3.0, 4.0], [1.5, 1.5, 3.5, 3.5])
    assert paired_verdict(tie) == "no significant difference"
    assert paired_verdict(paired([1.0, 2.0], [1.0, 2.0])) == "no significant difference"
    assert paired_verdict(up, scale=10.0) == "no difference that matters"
    assert paired_verdict(paired([1.0], [0.0])) == "one seed: cannot decide"
    assert paired([1.0], [0.0])["p"] is None  # strict JSON in summaries (no NaN)
    assert "p < 1e-4" in fmt_paired(paired(np.arange(30.0), np.arange(30.0) - 1 - 1e-3 * np.arange(30)))
    with pytest.raises(ValueError, match="equal-length"):
        paired([1.0, 2.0], [1.0])


def test_quick_verdicts_are_labelled():
    assert quick_label("7/10", True) == "7/10"
    assert "cannot decide" not in quick_label("yes", True)
    assert "quick run" in quick_label("yes", False)
