"""The examples run: the quickstart snippet and a short version of the main job."""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_same

ROOT = Path(__file__).resolve().parents[1]


def test_quickstart_example(capsys):
    runpy.run_path(str(ROOT / "examples" / "quickstart.py"), run_name="__main__")
    out = capsys.readouterr().out
    assert "Nash gap at mu" in out and "price of anarchy" in out


def test_main_job_quick(tmp_path):
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "fox2022_congestion_exact.py"),
            "--quick",
            "--out",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
    )
    summary = json.loads((tmp_path / "summary.json").read_text())["results"]
    # INPG reaches an exact Nash equilibrium; IPG is far slower (paper 001's claim)
    assert summary["INPG N=4"]["final_nash_gap"]["max_over_seeds"] < 1e-9
    assert summary["IPG N=4"]["final_nash_gap"]["max_over_seeds"] > 1e-3
    assert (tmp_path / "l1_accuracy.png").stat().st_size > 10_000


@pytest.mark.slow
def test_main_job_full_matches_readme(tmp_path):
    """The full main job: the numbers quoted in README.md's Reproductions table."""
    subprocess.run(
        [sys.executable, str(ROOT / "examples" / "fox2022_congestion_exact.py"), "--out", str(tmp_path)],
        check=True,
        capture_output=True,
    )
    res = json.loads((tmp_path / "summary.json").read_text())["results"]
    assert all(c is None for c in res["IPG N=4"]["iterations_to_nash_gap_below_gap_tol"])
    assert max(res["INPG N=4"]["iterations_to_nash_gap_below_gap_tol"]) <= 60
    assert max(res["INPG N=8"]["iterations_to_nash_gap_below_gap_tol"]) <= 60
    assert res["INPG N=8"]["final_nash_gap"]["max_over_seeds"] < 1e-9


def test_reproductions_smoke(tmp_path, capsys):
    """Every reproduction runs end to end (one seed, capped runs, two worker processes), prints
    "run k of n" lines and its table, writes figures, curves and summary, and reuses finished runs."""
    from baselines.experiments import FIGURES, REPRODUCTIONS, render_docs, render_readme_block, reproduce

    out = reproduce("all", out=tmp_path, seeds=[0], progress=True, workers=2, max_iters=25)
    printed = capsys.readouterr().out
    assert set(out) == set(REPRODUCTIONS)
    for name, rep in REPRODUCTIONS.items():
        folder = tmp_path / name
        summary = json.loads((folder / "summary.json").read_text())
        assert summary == json.loads(json.dumps(out[name]))
        for fig in FIGURES[name]:
            assert (folder / fig).stat().st_size > 20_000
        header = (folder / "curves.csv").read_text().splitlines()[0]
        assert header == "curve,iteration,mean,spread,band,runs"
        assert rep.TITLE in printed
        cols, rows = rep.table(summary["results"])
        assert rows and all(len(r) == len(cols) for r in rows)
    assert "[1/" in printed and "seed 0 ->" in printed
    # short runs cannot decide the paper's claims, and their tables say so
    words = " ".join(printed.split())  # the tables wrap to the terminal
    assert words.count("measured (quick run: cannot decide; --full decides)") == len(REPRODUCTIONS)
    assert "| experiment | paper |" in render_readme_block(out) and "## Paper 003" in render_docs(out)
    # the authors' protocol ran with its own estimator and stop rules
    cong = out["fox2022-congestion"]["results"]["curves"]
    auth = cong["INPG N=4 (authors' code)"]
    assert auth["config"]["estimator"] == "forced_visit_sum" and auth["config"]["stop_rule"] == "fox2022-npg"
    assert auth["game"].startswith("ring") and cong["IPG N=4 (authors' code)"]["config"]["algo"] == "ppg"
    # a second call reuses the finished runs instead of training again
    again = reproduce(
        "chen2022-coordination", out=tmp_path, seeds=[0], progress=True, workers=1, max_iters=25
    )
    assert again["chen2022-coordination"] == out["chen2022-coordination"]
    assert "(reused)" in capsys.readouterr().out


@pytest.mark.slow
def test_full_reproductions_regenerate_the_committed_summaries(tmp_path):
    """python -m baselines reproduce all --full gives the committed summaries (docs/results/*.json),
    whose rendering is README.md's and docs/'s tables.

    Compared to a relative tolerance, not bit for bit: the summaries were written on one machine,
    and another CPU's numpy SIMD paths and BLAS kernels change the runs' round-off (a tabular run
    moves by ~1e-13; a knife-edge Monte Carlo draw could in principle flip, which this test would
    then report as a difference to look at)."""
    from baselines.experiments import load_committed, reproduce

    res = reproduce("all", out=tmp_path, full=True, progress=False)
    committed = load_committed(ROOT)
    assert set(res) == set(committed)
    for name in committed:
        assert_same(res[name]["results"], committed[name]["results"], name, rel=1e-6, ignore=("run_dir",))


def test_parallel_reproduction_equals_serial(tmp_path):
    """Worker processes change nothing: every run is seeded by its own config."""
    from baselines.experiments import reproduce

    def strip(x):
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if k != "run_dir"}
        if isinstance(x, list):
            return [strip(v) for v in x]
        return x

    kw = {"seeds": [0], "progress": False, "max_iters": 10}
    par = reproduce("fox2022-distancing", out=tmp_path / "par", workers=2, **kw)["fox2022-distancing"]
    ser = reproduce("fox2022-distancing", out=tmp_path / "ser", workers=1, **kw)["fox2022-distancing"]
    assert strip(par["results"]) == strip(ser["results"])


def test_sb3_example(tmp_path):
    """The SB3 example trains, logs exact metrics from the first to the last update, and plots."""
    pytest.importorskip("stable_baselines3")
    res = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "sb3_exact_nash_gap.py"), "--steps", "4096", "--out",
         str(tmp_path)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    rows = list(__import__("csv").DictReader(open(tmp_path / "exact.csv")))
    assert [int(float(r["timesteps"])) for r in rows][0] == 0 and int(float(rows[-1]["timesteps"])) >= 4096
    assert all(0 < float(r["poa"]) <= 1 + 1e-9 and float(r["nash_gap"]) >= 0 for r in rows)
    assert res.stdout.count("exact Nash gap") == len(rows)
    assert (tmp_path / "sb3_exact_nash_gap.png").stat().st_size > 10_000


def _example(name: str):
    """An example script as a module (its ``main`` not run)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"example_{name}", ROOT / "examples" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up
    spec.loader.exec_module(mod)
    return mod


def test_sb3_tensorboard_example_writes_the_callback_rows_to_tensorboard(tmp_path):
    pytest.importorskip("tensorboard")
    ex = _example("sb3_tensorboard")
    cb = ex.train(steps=4096, seed=0, out=tmp_path, every=2048)
    scalars = ex.read_scalars(tmp_path / "tb")
    assert len(cb.rows) >= 3  # before training, after each update, at the end
    for key in ("nash_gap", "nash_gap_worst", "potential", "poa", "value_0", "value_1", "welfare"):
        logged = [v for _, v in scalars[f"exact/{key}"]]
        # TensorBoard stores float32; one point per evaluation, in order
        np.testing.assert_allclose(logged, [r[key] for r in cb.rows], rtol=1e-6, err_msg=key)
        assert [s for s, _ in scalars[f"exact/{key}"]] == [r["timesteps"] for r in cb.rows]  # its own step
    ex.plot(scalars, optimum=95.6, figure=tmp_path / "fig.png")
    assert (tmp_path / "fig.png").stat().st_size > 10_000


def _cleanrl_run(tmp_path, *argv: str):
    ex = _example("cleanrl_ppo_exact")
    args = ex.parse_args(["--out", str(tmp_path / "tb"), *argv])
    return ex, args, ex.train(args)


def _hand_metrics(agent, em) -> dict[str, float]:
    """ExactMetrics of the final network, its tables written out agent by agent."""
    import torch

    tables = []
    with torch.no_grad():
        for i in range(em.n_agents):
            o = torch.as_tensor(np.array(em.observations[:, i]))
            x = torch.nn.functional.one_hot(o, agent.n_index).float() if agent.n_index else o.float()
            tables.append(torch.softmax(agent.actor(x).double(), dim=-1).numpy())
    return em(tables)


def test_cleanrl_ppo_logs_the_exact_gap_of_its_final_policy(tmp_path):
    pytest.importorskip("tensorboard")
    ex, args, out = _cleanrl_run(
        tmp_path, "--total-timesteps", "2048", "--num-envs", "4", "--num-steps", "16", "--exact-every", "4"
    )
    rows = out["rows"]
    assert [r["update"] for r in rows] == [0, 4, 8, 12, 16]  # 2048 / (16 steps x 4 copies x 2 agents)
    scalars = _example("sb3_tensorboard").read_scalars(tmp_path / "tb")
    assert [s for s, _ in scalars["exact/nash_gap"]] == [int(r["global_step"]) for r in rows]
    logged = [v for _, v in scalars["exact/nash_gap"]]
    np.testing.assert_allclose(logged, [r["nash_gap"] for r in rows], rtol=1e-6)
    expect = _hand_metrics(out["agent"], out["exact"])
    for k, v in expect.items():
        assert rows[-1][k] == pytest.approx(v, rel=1e-9, abs=1e-12), k


def test_cleanrl_ppo_lowers_the_exact_nash_gap(tmp_path):
    # coordination N = 2, 20 updates (20,480 agent-steps; measured 3.83 -> 0.15 with seed 1)
    _, _, out = _cleanrl_run(tmp_path, "--total-timesteps", "20480", "--exact-every", "20")
    first, last = out["rows"][0]["nash_gap"], out["rows"][-1]["nash_gap"]
    assert first > 1.0 and last < 0.25 * first, (first, last)
    assert out["rows"][-1]["welfare"] > out["rows"][0]["welfare"] + 20


def test_cleanrl_ppo_masks_agents_that_finished_on_the_grid_world(tmp_path):
    # the default 10x10 layout, agents read their own cell: exact metrics over the 4 task models
    _, args, out = _cleanrl_run(
        tmp_path,
        "--env-id", "mpg/MultiTaskGridWorld-v0", "--env-kwargs", '{"observation": "own"}',
        "--total-timesteps", "4096", "--num-envs", "4", "--num-steps", "64", "--exact-every", "2",
    )  # fmt: skip
    em = out["exact"]
    assert em.decomposed and em.observations.shape == (100, 4)
    updates = int(out["rows"][-1]["update"])
    # agents that reached their goal sat out: their steps are not in the losses' batches
    assert out["samples"] == out["global_step"] < updates * 64 * 4 * 4
    expect = _hand_metrics(out["agent"], em)
    for k, v in expect.items():
        assert out["rows"][-1][k] == pytest.approx(v, rel=1e-9, abs=1e-12), k


@pytest.mark.parametrize(
    "argv",
    [
        ["--num-envs", "0"],
        ["--num-steps", "-3"],
        ["--learning-rate", "nan"],
        ["--learning-rate", "inf"],
        ["--gamma", "1.5"],
        ["--gae-lambda", "-0.1"],
        ["--env-kwargs", "[1]"],
        ["--env-kwargs", "{bad"],
        ["--exact-every", "x"],
        ["--anneal-lr", "maybe"],
        ["--total-timesteps", "1e308"],
    ],
)
def test_cleanrl_ppo_refuses_bad_arguments(argv, capsys):
    ex = _example("cleanrl_ppo_exact")
    with pytest.raises(SystemExit) as err:
        ex.parse_args(argv)
    assert err.value.code == 2
    assert argv[0] in capsys.readouterr().err


def test_cleanrl_ppo_refuses_bad_env_arguments_before_writing(tmp_path):
    out = tmp_path / "tb"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "cleanrl_ppo_exact.py"), "--out", str(out),
         "--env-kwargs", '{"n_agents": 2, "bogus": 1}'],
        capture_output=True, text=True,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: unknown env keyword argument(s) ['bogus']")
    assert not out.exists()
