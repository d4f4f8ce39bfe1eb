"""Paper 003's reproductions: the lambda choice on separate seeds, paired comparisons with censored
iterations, the order of methods from paired tests, and summaries that re-derive from their per-run
records (an edited per-run value no longer matches the committed summary)."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from baselines.experiments import REPRODUCTIONS, load_committed
from baselines.experiments.chen2022 import SELECT_SLACK, compare, order, select_lambda, selection_seeds
from baselines.experiments.stats import paired

ROOT = Path(__file__).resolve().parents[1]
NAMES = ("chen2022-coordination", "chen2022-coordination-nn")


def _rec(poa, gap, its=None, seeds=None):
    n = len(poa)
    return {
        "meta": {},
        "seed": list(seeds or range(n)),
        "final_poa": list(poa),
        "final_nash_gap": list(gap),
        "iterations_to_gap": list(its or [None] * n),
    }


def test_lambda_is_the_best_poa_among_those_no_further_from_equilibrium():
    plain = _rec([0.8, 0.9], [0.2, 0.4])  # mean gap 0.3: eligible up to 0.3 + SELECT_SLACK = 0.4
    by = {
        0.01: _rec([0.81, 0.9], [0.2, 0.4]),  # gap 0.3: eligible, POA 0.855
        1.0: _rec([0.9, 0.92], [0.3, 0.5]),  # gap 0.4: eligible, POA 0.91 -> chosen
        10.0: _rec([0.99, 0.99], [3.0, 3.0]),  # best POA, but far from every equilibrium
        100.0: _rec([0.5, 0.5], [0.0, 0.0]),  # an exact (uniform) equilibrium with a poor POA
    }
    s = select_lambda(plain, by)
    assert SELECT_SLACK == 0.1
    assert s["lambda"] == 1.0 and s["rule"].startswith("best POA")
    assert s["lambdas"] == [0.01, 1.0, 10.0, 100.0] and s["eligible"] == [True, True, False, True]
    assert s["final_nash_gap"] == pytest.approx([0.3, 0.4, 3.0, 0.0]) and s["final_poa"][1] == pytest.approx(
        0.91
    )
    assert s["plain_poa"] == pytest.approx(0.85) and s["plain_gap"] == pytest.approx(0.3)
    assert s["in_sample_gain"] == paired([0.9, 0.92], [0.8, 0.9])
    # no lambda ends as close to an equilibrium: the smallest gap
    s = select_lambda(
        _rec([0.8, 0.8], [0, 0]), {1.0: _rec([1, 1], [0.5, 0.5]), 0.1: _rec([0.8, 0.8], [0.3, 0.3])}
    )
    assert s["lambda"] == 0.1 and s["rule"].startswith("every gap")
    with pytest.raises(ValueError, match="share their seeds"):
        select_lambda(_rec([0.8], [0.1], seeds=[5]), {0.1: _rec([0.8], [0.1], seeds=[6])})


def test_selection_seeds_avoid_the_reported_ones():
    assert selection_seeds(range(30), 3) == [100, 101, 102]
    assert selection_seeds([100, 102], 3) == [101, 103, 104]


def test_iterations_are_compared_with_non_convergence_censored_at_the_horizon():
    recs = {
        "fast": _rec([0.9] * 4, [0.0] * 4, [10, 20, 30, None]),
        "slow": _rec([0.9] * 4, [0.0] * 4, [50, 60, None, None]),
    }
    t = compare(recs, "fast", "slow", "iterations", 100, "F", "S")
    # fast - slow per seed: -40, -40, -70, 0 (a run that never gets there counts as the horizon)
    assert t["test"] == paired([10, 20, 30, 100], [50, 60, 100, 100])
    assert t["test"]["mean"] == pytest.approx(-37.5) and t["verdict"] == "no significant difference"
    recs["fast"]["iterations_to_gap"] = [10, 20, 30, 40]
    assert compare(recs, "fast", "slow", "iterations", 100, "F", "S")["verdict"] == "F faster"
    assert compare(recs, "slow", "fast", "iterations", 100, "S", "F")["verdict"] == "F faster"
    recs["slow"]["seed"] = [9, 1, 2, 3]
    with pytest.raises(ValueError, match="different seeds"):
        compare(recs, "fast", "slow", "final_poa", 100, "F", "S")


def test_poa_differences_below_the_scale_are_no_difference_that_matters():
    recs = {"a": _rec([0.9001, 0.9002, 0.9001], [0] * 3), "b": _rec([0.9, 0.9, 0.9], [0] * 3)}
    assert compare(recs, "a", "b", "final_poa", 10, "A", "B")["verdict"] == "no difference that matters"
    recs["a"]["final_poa"] = [0.95, 0.96, 0.97]
    assert compare(recs, "a", "b", "final_poa", 10, "A", "B")["verdict"] == "A higher"


def test_order_joins_methods_by_their_paired_tests():
    recs = {
        "A": _rec([0.9] * 4, [0] * 4, [10, 11, 12, 10]),
        "B": _rec([0.9] * 4, [0] * 4, [40, 42, 41, 40]),
        "C": _rec([0.9] * 4, [0] * 4, [41, 40, 43, 41]),
    }
    tests = {
        (a, b): compare(recs, a, b, "iterations", 100, a, b) for a, b in [("A", "B"), ("A", "C"), ("B", "C")]
    }
    assert order(["C", "B", "A"], tests, +1) == "A < B ~ C"


@pytest.fixture(scope="module")
def committed():
    return load_committed(ROOT)


def _first_per_run_value(results: dict) -> tuple[str, str]:
    label = next(k for k, r in results["per_run"].items() if r["meta"]["role"] == "report")
    return label, "final_poa"


@pytest.mark.parametrize("name", NAMES)
def test_an_edited_per_run_value_changes_the_rederived_summary(committed, name):
    from test_docs import assert_same

    results = committed[name]["results"]
    rep = REPRODUCTIONS[name]
    assert_same(rep.rederive(results), results)
    label, key = _first_per_run_value(results)
    edited = copy.deepcopy(results)
    edited["per_run"][label][key][0] -= 0.2
    with pytest.raises(AssertionError):
        assert_same(rep.rederive(edited), results)
    edited = copy.deepcopy(results)
    edited["curves"][label]["final_poa"]["mean"] += 1e-6  # an edited aggregate is recomputed away
    assert_same(rep.rederive(edited), results)
    with pytest.raises(AssertionError):
        assert_same(edited, results)


@pytest.mark.parametrize("name", NAMES)
def test_a_lambda_the_selection_seeds_do_not_choose_is_refused(committed, name):
    results = copy.deepcopy(committed[name]["results"])
    key, sel = next(iter(results["selection"].items()))
    # make the chosen lambda's selection runs end far from equilibrium: another lambda is chosen
    lam = sel["lambda"]
    N = int(key.split(" ")[0][2:])
    for r in results["per_run"].values():
        m = r["meta"]
        if m["role"] == "select" and m["n_agents"] == N and m["lambda"] == lam:
            r["final_nash_gap"] = [100.0] * len(r["final_nash_gap"])
    with pytest.raises(ValueError, match="selection seeds choose"):
        REPRODUCTIONS[name].rederive(results)
