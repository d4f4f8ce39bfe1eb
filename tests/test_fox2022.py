"""Paper 001's reproductions: the lock-in of the authors' visit-sum estimator (exact expectation
against Monte Carlo), the authors' iteration caps, endpoint labels, and summaries that re-derive
from their per-run records (and fail to when one is edited)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import numpy as np
import pettingzoo
import pytest
from test_docs import assert_same

import mpg_envs  # noqa: F401  (registers the envs)
from baselines.experiments import fox2022
from baselines.experiments.fox2022 import AUTHORS_CAPS, Congestion, Distancing, lock_in, rederive
from baselines.sampler import ForcedActionEstimator
from mpg_envs import exact
from mpg_envs.congestion.env import AUTHORS_CODE_GAME

ROOT = Path(__file__).resolve().parents[1]
NAMES = {"fox2022-distancing": Distancing, "fox2022-congestion": Congestion}


def _biased(model, bias: float) -> list[np.ndarray]:
    pol = exact.uniform_policy(model)
    pol[0] = np.tile(np.exp([bias, 0.0]) / np.exp([bias, 0.0]).sum(), (model.n_states, 1))
    return pol


# ------------------------------------------------------------------------------------ lock-in
def test_visit_sum_estimator_favours_the_unit_an_agent_already_prefers():
    """On the authors' N = 4 game, agent 0 biased towards unit 0 by a logit of 0.2, the others
    uniform: the true advantage difference is 0, the estimator's mean is +3.1 (Monte Carlo over
    300 estimates, within 4 standard errors of the exact expectation)."""
    env = pettingzoo.make("parallel", "mpg/Congestion-v0", n_agents=4, **AUTHORS_CODE_GAME).unwrapped
    model = env.model()
    pol = _biased(model, 0.2)
    true = exact.advantages(model, pol)[0]
    np.testing.assert_allclose(true[:, 0] - true[:, 1], 0.0, atol=1e-12)

    est = ForcedActionEstimator(env.dynamics, model.gamma, horizon=20, samples=10, rng=7, value="visit_sum")
    d = []
    for _ in range(300):
        a = est.estimate(pol).advantages()[0]
        d.append((a[:, 0] - a[:, 1]).mean())
    mean, se = float(np.mean(d)), float(np.std(d, ddof=1) / np.sqrt(len(d)))
    expected = est.expected(model, pol).advantages()[0]
    exp_diff = expected[:, 0] - expected[:, 1]
    np.testing.assert_allclose(exp_diff, exp_diff[0], rtol=1e-12)  # the same in every state
    assert abs(mean - exp_diff[0]) < 4 * se, (mean, se, exp_diff[0])
    assert mean / se > 50  # far from the true 0
    assert exp_diff[0] == pytest.approx(3.1074, abs=1e-4)


def test_lock_in_numbers_are_the_ones_the_docs_quote():
    li = lock_in()
    assert li["true_difference"] == 0.0
    assert f"**{li['expected_difference']:+.1f}**" in Congestion.DESCRIPTION
    assert f"{li['gain']:.1f} x the bias" in Congestion.DESCRIPTION
    assert f"about {li['inpg_growth']:.2f} per iteration" in Congestion.DESCRIPTION
    # linear response: the difference at 0.2 is about 0.2 x the small-bias gain
    assert li["expected_difference"] == pytest.approx(0.2 * li["gain"], rel=0.01)
    # the mean-return estimator of the distancing scripts has no such bias: 0 expected difference
    env = pettingzoo.make("parallel", "mpg/Congestion-v0", n_agents=4, **AUTHORS_CODE_GAME).unwrapped
    model = env.model()
    est = ForcedActionEstimator(env.dynamics, model.gamma, horizon=20, value="mean")
    a = est.expected(model, _biased(model, 0.2)).advantages()[0]
    np.testing.assert_allclose(a[:, 0] - a[:, 1], 0.0, atol=1e-12)


# ------------------------------------------------------------------------------------ protocols
def test_authors_iteration_caps_are_their_scripts():
    """pg_routing.py full_experiment(3, 2000, ...), npg_routing.py (10, 500, ...),
    congestionMPG_plots.py (10, 1000, ...), npg.py (5, 500, ...); NPG records pi_0 .. pi_499."""
    assert AUTHORS_CAPS == {
        "distancing": {"IPG": 1000, "INPG": 499},
        "congestion": {"IPG": 2000, "INPG": 499},
    }
    assert "at most 2000 updates (`pg_routing.py` line 240" in Congestion.DESCRIPTION
    assert "at most 1000 updates (`congestionMPG_plots.py` line 237" in Distancing.DESCRIPTION
    for rep in (Congestion, Distancing):
        assert "at most 500 recorded policies, pi_0 to pi_499" in rep.DESCRIPTION
    cfg = fox2022._authors(
        "mpg/Congestion-v0", {"n_agents": 4}, "forced_visit_sum", Path("x"), AUTHORS_CAPS["congestion"]
    )
    assert (cfg["IPG"].iters, cfg["INPG"].iters) == (2000, 499)


# ------------------------------------------------------------------------------------ endpoints
def test_distancing_labels_say_pure_or_mixed():
    """The same rounded counts, pure or mixed, get different labels; the pure profile the authors'
    runs reach is an exact equilibrium, a mix near it is not."""
    model = pettingzoo.make("parallel", "mpg/Distancing-v0").unwrapped.model()
    safe = [2, 2, 3, 3, 3, 3, 2, 2]  # facility of each agent: (0,0,4,4) in the safe state
    dist = [0, 1, 2, 3, 0, 1, 2, 3]  # (2,2,2,2) in the distancing state

    def policy(eps: float) -> list[np.ndarray]:
        out = []
        for a, b in zip(safe, dist):
            p = np.full((2, 4), eps / 3)
            p[0, a] = p[1, b] = 1 - eps
            out.append(p)
        return out

    assert fox2022._facility_counts(model, policy(0.0)) == "(0,0,4,4)/(2,2,2,2)"
    assert fox2022._facility_counts(model, policy(0.005)) == "(0,0,4,4)/(2,2,2,2)"
    assert fox2022._facility_counts(model, policy(0.05)) == "mixed ~(0,0,4,4)/(2,2,2,2)"
    tol = fox2022.equilibrium_tolerance(model)
    assert exact.nash_gap(model, policy(0.0)).gap < 1e-9
    assert exact.nash_gap(model, policy(0.05)).gap > tol


def _synthetic_inputs(gaps: list[float], stops: list[int | None]) -> dict:
    config = {"env": "mpg/Congestion-v0", "env_kwargs": {"n_agents": 4, **AUTHORS_CODE_GAME}, "iters": 499}
    config |= {"stop_l1": 1e-5, "algo": "inpg"}
    per_run = [
        {
            "seed": s,
            "stopped": stop is not None,
            "stopped_at": stop,
            "final_iteration": stop or 499,
            "iterations_to_equilibrium": (stop - 3) if g == 0 and stop else None,
            "outcome": "2-2" if g == 0 else "3-1",
            "nash_gap": g,
            "nash_gap_worst": g,
            "peak_nash_gap": 3.0 + s,
            "peak_iteration": 30,
            "nash_gap_at": [0.0, 1.0 + 2 * s],
            "run_dir": f"run{s}",
        }
        for s, (g, stop) in enumerate(zip(gaps, stops))
    ]
    curve = {
        "protocol": "authors' code",
        "algorithm": "INPG",
        "n_agents": 4,
        "game": "ring",
        "label": "INPG N=4 (authors' code)",
        "config": config,
        "milestones": [0, 20],
        "per_run": per_run,
    }
    return {"curves": {curve["label"]: curve}}


def test_fractions_come_with_wilson_intervals_and_stops_with_quartiles():
    gaps = [0.0] * 13 + [5.0] * 17
    stops = [40 + k % 16 for k in range(30)]
    res = rederive(_synthetic_inputs(gaps, stops))
    s = res["curves"]["INPG N=4 (authors' code)"]
    assert s["at_equilibrium"]["k"] == 13 and s["at_equilibrium"]["n"] == 30
    cols, rows = fox2022.table(res)
    row = dict(zip(cols, rows[0]))
    assert row["at an equilibrium (Wilson 95% CI)"] == "13/30 (95% CI 27-61%)"
    assert s["stop_iterations"]["min"] == 40 and s["stop_iterations"]["max"] == 55
    assert s["stop_iterations"]["median"] == float(np.median(stops))
    assert "13x 2-2: equilibrium, Nash gap 0" in row["endpoints (runs: verdict, final Nash gap)"]
    assert "17x 3-1: not an equilibrium, Nash gap 5" in row["endpoints (runs: verdict, final Nash gap)"]
    text = fox2022._measured(res, "authors' code", 4, gap_path=True)
    assert "13/30 (95% CI 27-61%) end at an equilibrium" in text
    assert "median 0 at iteration 0, 30 at 20" in text  # the median of 1 + 2 s, s = 0 .. 29
    assert "each run's peak before it ends 3-32 (median 18)" in text


# ------------------------------------------------------------------------------------ summaries
@pytest.fixture(scope="module", params=sorted(NAMES))
def committed(request):
    path = ROOT / "docs" / "results" / f"{request.param}.json"
    return request.param, json.loads(path.read_text())["results"]


def test_rederive_needs_only_the_per_run_records(committed):
    """Strip every aggregate from the committed summary: rederive rebuilds all of it."""
    name, results = committed
    inputs = {
        "curves": {
            k: {f: c[f] for f in fox2022._CURVE_INPUTS} | {"per_run": [_strip(p) for p in c["per_run"]]}
            for k, c in results["curves"].items()
        }
    }
    if "lock_in" in results:
        inputs["lock_in"] = {k: results["lock_in"][k] for k in ("n_agents", "bias", "horizon", "layers")}
    assert_same(NAMES[name].rederive(inputs), results)


def _strip(p: dict) -> dict:
    return {k: v for k, v in p.items() if k != "equilibrium"}


def _first(results: dict, field: str):
    for label, c in results["curves"].items():
        for i, p in enumerate(c["per_run"]):
            v = p[field]
            if v is not None and not (field == "nash_gap_at" and all(x is None for x in v)):
                return label, i
    raise AssertionError(f"no run has a {field}")


@pytest.mark.parametrize(
    "field",
    [
        "nash_gap",
        "stopped_at",
        "stopped",
        "iterations_to_equilibrium",
        "outcome",
        "peak_nash_gap",
        "nash_gap_at",
        "equilibrium",
    ],
)
def test_an_edited_per_run_value_fails_the_rederivation(committed, field):
    name, results = committed
    if field in ("stopped_at", "stopped") and not any(c["stopped"] for c in results["curves"].values()):
        pytest.skip("no run stops")
    edited = copy.deepcopy(results)
    label, i = _first(edited, field)
    p = edited["curves"][label]["per_run"][i]
    if field == "nash_gap_at":
        j = next(j for j, v in enumerate(p[field]) if v is not None)
        p[field][j] += 1e6
    elif isinstance(p[field], bool):
        p[field] = not p[field]
    elif isinstance(p[field], str):
        p[field] = p[field] + " (edited)"
    else:
        p[field] += 10**6
    with pytest.raises(AssertionError):
        assert_same(NAMES[name].rederive(edited), edited)


def test_an_edited_lock_in_number_fails_the_rederivation():
    results = json.loads((ROOT / "docs" / "results" / "fox2022-congestion.json").read_text())["results"]
    results["lock_in"]["expected_difference"] = 3.0
    with pytest.raises(AssertionError):
        assert_same(Congestion.rederive(results), results)


def test_headline_quotes_wilson_intervals(committed):
    _, results = committed
    rows = (Congestion if "lock_in" in results else Distancing).headline(results)
    for _, _, measured in rows:
        if "end at an equilibrium" in measured:
            assert re.search(r"\d+/\d+ \(95% CI \d+-\d+%\) end at an equilibrium", measured)
