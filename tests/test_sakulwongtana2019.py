"""``reproduce sakulwongtana2019``: report 002's claims measured exactly (a two-temperature version
runs here; the committed full summary is re-derived in tests/test_docs.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import assert_same

from baselines.experiments import FIGURES, REPRODUCTIONS, reproduce
from baselines.experiments import sakulwongtana2019 as sk
from baselines.probabilistic import rommeo
from mpg_envs import coordination_v0, exact, tugofwar_v0, zerosum
from mpg_envs.model import TabularModel


def test_registered():
    assert REPRODUCTIONS["sakulwongtana2019"] is sk.Sakulwongtana2019
    assert FIGURES["sakulwongtana2019"] == ["sakulwongtana2019.png"]
    assert sk.beta_grid(False)[0] == pytest.approx(1e-2) and sk.beta_grid(True)[-1] == pytest.approx(1e3)
    assert len(sk.beta_grid(False)) == 6 and len(sk.beta_grid(True)) == 26


def test_pure_maxmin_of_matching_pennies_is_minus_one_per_step():
    M = np.array([[1.0, -1.0], [-1.0, 1.0]])
    R = np.stack([M.ravel(), -M.ravel()])[:, None]
    model = TabularModel(2, (2, 2), P=np.ones((4, 1)), R=R, mu=[1.0], gamma=0.5)
    np.testing.assert_allclose(sk.pure_maxmin(model), [-2.0], atol=1e-10)  # -1 / (1 - gamma)
    np.testing.assert_allclose(zerosum.shapley(model).values, [0.0], atol=1e-8)  # mixing: 0


def test_joint_values_of_a_product_equal_exact_and_of_rommeos_joint_exceed_its_marginals():
    model = coordination_v0.parallel_env(n_agents=2).model()
    sol = rommeo(model, 3.0)
    prod = sol.policies[0][:, :, None] * sol.policies[1][:, None, :]
    np.testing.assert_allclose(sk.joint_values(model, prod), exact.evaluate(model, sol.policies), atol=1e-9)
    assert (sk.joint_values(model, sol.joint).sum(axis=0) @ model.mu) > (
        exact.evaluate(model, sol.policies).sum(axis=0) @ model.mu
    )


def test_measure_point_on_the_zero_sum_game():
    model = tugofwar_v0.parallel_env().model()
    rec, sol = sk.measure_point("tugofwar", "Balancing-Q (competitive)", 1000.0, model)
    assert rec["poa"] is None and rec["beta_opponent"] == -1000.0
    assert rec["soft_maxmin_distance_worst"] < 0.01 < rec["soft_minimax_distance_worst"]
    assert rec["eq25_gap"] > 1.0  # soft max-min vs soft min-max
    rec, _ = sk.measure_point("tugofwar", "Balancing-Q (cooperative)", 1.0, model)
    assert rec["eq25_gap"] < 1e-9


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """Two temperatures and 20 INPG iterations: the machinery, not the numbers."""
    mp = pytest.MonkeyPatch()
    mp.setattr(sk, "beta_grid", lambda full: [0.01, 1000.0])
    mp.setattr(sk, "INPG_ITERS", {False: 20, True: 20})
    out = tmp_path_factory.mktemp("sk")
    try:
        got = reproduce("sakulwongtana2019", out=out, workers=1, progress=False)
    finally:
        mp.undo()
    return out, got["sakulwongtana2019"]


def test_quick_run_writes_summary_figure_and_rederives(quick):
    out, summary = quick
    folder = out / "sakulwongtana2019"
    assert (folder / "sakulwongtana2019.png").stat().st_size > 20_000
    assert (folder / "curves.csv").read_text().startswith("curve,iteration,mean,spread,band,runs")
    lines = (folder / "points.csv").read_text().splitlines()
    assert lines[0].startswith("game,algorithm,beta,") and len(lines) == 1 + 2 * 3 * len(sk.ALGOS)
    saved = json.loads((folder / "summary.json").read_text())
    assert saved["full"] is False and saved["results"]["betas"] == [0.01, 1000.0]
    res = saved["results"]
    assert len(res["points"]) == 2 * 3 * len(sk.ALGOS) and set(res["inpg"]) == set(sk.GAMES)
    assert_same(sk.Sakulwongtana2019.rederive(res), res)


def test_quick_run_measures_the_report_claims(quick):
    c = quick[1]["results"]["claims"]
    assert c["rommeo"]["verdict"] == "confirmed"
    assert c["balancing_q"]["verdict"].startswith("cooperative: confirmed; competitive: not confirmed")
    assert c["eq25"]["cooperative_max_gap"] < 1e-9 < 1.0 < c["eq25"]["competitive_max_gap"]
    inc = c["inconsistency"]
    assert inc["q_distance"] < 1e-9 and inc["policy_l1"] < 1e-9  # equal temperatures: ROMMEO = Balancing-Q
    assert inc["congestion_joint_poa"] > 0.99 > 0.8 > inc["congestion_marginal_poa"]
    assert c["beta_zero"]["prior_distance"] < 0.01


def test_headline_and_tables_render(quick):
    res = quick[1]["results"]
    rows = sk.Sakulwongtana2019.headline(res)
    assert len(rows) == 7 and all(len(r) == 3 for r in rows)
    assert (
        "confirmed" in rows[0][2]
        and "holds only for equal temperatures" in rows[3][2]
        and "pure-strategy min-max" in rows[2][2]
    )
    cols, body = sk.Sakulwongtana2019.table(res)
    assert len(body) == 2 * 3 * len(sk.ALGOS) + 3 and all(len(r) == len(cols) for r in body)


def test_an_edited_record_changes_the_rederived_claims(quick):
    res = json.loads(json.dumps(quick[1]["results"]))
    for p in res["points"]:
        if p["game"] == "tugofwar" and p["algorithm"] == "ROMMEO":
            p["nash_gap_worst"] = 0.0
    assert sk.Sakulwongtana2019.rederive(res)["claims"]["rommeo"]["verdict"] == "not confirmed"


def test_pure_minmax_is_above_the_minimax_value_and_pfp_tends_to_it():
    """The pure min-max (upper) value bounds V* from above (the pure max-min from below); PFP with
    beta^-i = -beta^i tends to it within log 2 / (beta (1 - gamma)) (measured: tests/test_pfp.py)."""
    from mpg_envs import zerosum

    model = sk._model("tugofwar")
    upper, lower, v_star = sk.pure_minmax(model), sk.pure_maxmin(model), zerosum.shapley(model).values
    assert np.all(lower <= v_star + 1e-9) and np.all(v_star <= upper + 1e-9) and np.all(upper - lower > 1)
    rec, _ = sk.measure_point("tugofwar", "PFP (competitive)", 1e3, model)
    assert rec["soft_minmax_distance_worst"] <= np.log(2) / (1e3 * (1 - model.gamma)) + 1e-9
