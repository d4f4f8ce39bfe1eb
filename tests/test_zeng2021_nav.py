"""``reproduce zeng2021-navigation``: paper 004 Table 1 and Fig. 3 on MiniWorld."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import assert_same

import baselines.experiments as experiments
from baselines.experiments import zeng2021_nav as ZV
from baselines.experiments.zeng2021_nav import Navigation, table1_matrix


def _render_or_skip_reason() -> str | None:
    if ZV.miniworld_missing() is not None:
        return ZV.miniworld_missing()
    try:
        from mpg_envs.nav import make_env

        make_env("hallway", resolution=8).reset(seed=0)
    except Exception as err:  # no EGL / OpenGL context
        return f"headless OpenGL (EGL) rendering unavailable: {type(err).__name__}: {err}"
    return None


_SKIP = _render_or_skip_reason()
needs_render = pytest.mark.skipif(_SKIP is not None, reason=str(_SKIP))


# ---------------------------------------------------------------------------- Table 1's layout
def _coded(offset: float, E: int = 3) -> np.ndarray:
    """A (5, 4, E) distance array whose episodes average to offset + 10 * policy + task."""
    code = offset + 10.0 * np.arange(5)[:, None] + np.arange(4)[None, :]
    noise = np.array([-1.0, 0.0, 1.0])[:E] if E == 3 else np.zeros(E)
    return code[:, :, None] + noise[None, None, :]


def test_table1_rows_are_policies_and_columns_are_environments(tmp_path):
    """From hand-made final.npz files: row i < 4 is the SA run's agent i (its own policy), row 4
    the DCPG run's average (its last policy row), column t the task flown in. A transposed or
    swapped table (SA's average, DCPG's agents, tasks as rows) fails here."""
    np.savez(tmp_path / "sa.npz", distance=_coded(0.0))
    np.savez(tmp_path / "dcpg.npz", distance=_coded(1000.0))
    sa, dc = np.load(tmp_path / "sa.npz")["distance"], np.load(tmp_path / "dcpg.npz")["distance"]
    M = table1_matrix(sa, dc)
    assert M.shape == (5, 4)
    for t in range(4):
        for i in range(4):
            assert M[i, t] == pytest.approx(10 * i + t)  # SA-i's own policy in Env t
        assert M[4, t] == pytest.approx(1000 + 40 + t)  # DCPG's average policy in Env t
    # asymmetric: a transposed reading would put 10 * t + i in cell (i, t)
    assert M[1, 2] != pytest.approx(M[2, 1])


def test_table1_refuses_mismatched_arrays():
    with pytest.raises(ValueError, match=r"\(N \+ 1, N, E\)"):
        table1_matrix(np.zeros((4, 4, 2)), np.zeros((4, 4, 2)))
    with pytest.raises(ValueError):
        table1_matrix(np.zeros((5, 4, 2)), np.zeros((5, 4, 3)))


def _hand_results(M: np.ndarray) -> dict:
    n = len(M)
    return {
        "full": True,
        "protocol": dict(ZV.FULL, seeds=n),
        "environments": list(ZV.ENV_NAMES),
        "estimators": {
            "REINFORCE": {
                "seeds": list(range(n)),
                "rows": ZV.ROWS,
                "runs": M.tolist(),
                "crashed": np.ones_like(M).tolist(),
                "initial": np.ones((n, 4)).tolist(),
                "consensus_error": [0.1] * n,
            }
        },
    }


def test_claims_read_the_right_cells():
    """(b) compares DCPG with SA-i on SA-i's diagonal cell, (a) with the other SA-j in column i."""
    rng = np.random.default_rng(0)
    M = rng.uniform(1, 2, size=(4, 5, 4))
    M[:, 4, 2] += 10.0  # DCPG far better in Env2 than everyone
    M[:, 1, 1] += 10.0  # SA-1 far better in its own Env1
    res = Navigation.rederive(_hand_results(M))["estimators"]["REINFORCE"]
    assert np.allclose(res["mean"], M.mean(axis=0))
    assert np.allclose(res["sum_mean"], M.sum(axis=2).mean(axis=0))
    own, gen, spec = (res["claims"][k] for k in ("own_env", "generality", "specialisation"))
    assert own[2]["verdict"] == "DCPG higher" and own[1]["verdict"] == "SA-1 higher"
    assert own[2]["paired"]["mean"] == pytest.approx(np.mean(M[:, 4, 2] - M[:, 2, 2]))
    assert gen[2]["verdict"] == "DCPG higher"
    assert spec[1]["verdict"] == "SA-1 higher"
    others = (M[:, 0, 3] + M[:, 1, 3] + M[:, 2, 3]) / 3
    assert spec[3]["paired"]["mean"] == pytest.approx(np.mean(M[:, 3, 3] - others))
    assert not any(c["capped"] for k in res["claims"] for c in res["claims"][k])  # every episode crashed
    # DCPG reached the step limit in every Env2 episode: its Env2 comparisons say so, no others
    capped = _hand_results(M)
    C = np.asarray(capped["estimators"]["REINFORCE"]["crashed"])
    C[:, 4, 2] = 0.0
    capped["estimators"]["REINFORCE"]["crashed"] = C.tolist()
    cl = Navigation.rederive(capped)["estimators"]["REINFORCE"]["claims"]
    assert [c["capped"] for c in cl["own_env"]] == [False, False, True, False]
    assert [c["capped"] for c in cl["generality"]] == [False, False, True, False]
    assert not any(c["capped"] for c in cl["specialisation"])
    assert "lower bound" in " ".join(r[2] for r in Navigation.headline(Navigation.rederive(capped)))
    # every headline row and table row renders
    full = Navigation.rederive(_hand_results(M))
    assert all("quick run" not in r[2] for r in Navigation.headline(full))
    cols, rows = Navigation.table(full)
    assert all(len(r) == len(cols) for r in rows) and len(rows) == 6


def test_rederive_catches_an_edited_record():
    M = np.random.default_rng(1).uniform(1, 5, size=(3, 5, 4))
    res = Navigation.rederive(_hand_results(M))
    assert_same(Navigation.rederive(res), res)
    res["estimators"]["REINFORCE"]["runs"][1][4][0] += 1.0
    with pytest.raises(AssertionError):
        assert_same(Navigation.rederive(res), res)


def test_paper_values_have_one_home():
    from baselines.experiments import zeng2021_nn, zeng2021_paper

    assert zeng2021_nn.PAPER is zeng2021_paper.PAPER and ZV.PAPER is zeng2021_paper.PAPER
    assert zeng2021_nn.PAPER_SUMS is zeng2021_paper.PAPER_SUMS is ZV.PAPER_SUMS


# ---------------------------------------------------------------------------- without MiniWorld
class _Cheap:
    NAME = "cheap"
    TITLE = "a cheap reproduction"

    @staticmethod
    def run(ctx):
        return {"ran": True}

    @staticmethod
    def headline(results):
        return []


def test_miniworld_missing_names_the_extra(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec

    def find_spec(name, *args):
        return None if name == "miniworld" else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    why = ZV.miniworld_missing()
    assert why is not None and "MiniWorld" in why and 'pip install -e ".[nav]"' in why


MISSING = 'MiniWorld is not installed (pip install -e ".[nav]" brings it)'


def test_reproduce_all_skips_navigation_without_miniworld(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(ZV, "miniworld_missing", lambda: MISSING)
    monkeypatch.setattr(experiments, "REPRODUCTIONS", {"cheap": _Cheap, Navigation.NAME: Navigation})
    out = experiments.reproduce("all", out=tmp_path, progress=False, workers=1)
    assert set(out) == {"cheap"}
    lines = [ln for ln in capsys.readouterr().out.splitlines() if "zeng2021-navigation" in ln]
    assert lines == [f"skipping zeng2021-navigation: {MISSING}"]
    assert not (tmp_path / Navigation.NAME).exists()
    # asked for by name, it is refused before any folder is made
    with pytest.raises(ValueError, match=r"zeng2021-navigation.*pip install -e \"\.\[nav\]\""):
        experiments.reproduce(Navigation.NAME, out=tmp_path / "named", progress=False)
    assert not (tmp_path / "named").exists()


def test_grid_refuses_other_configs():
    from baselines.experiments.dcpg_grid import run_one

    with pytest.raises(TypeError, match="DCPGConfig or EnvDCPGConfig"):
        run_one({"iters": 3})


# ---------------------------------------------------------------------------- end to end
@needs_render
def test_quick_reproduction_end_to_end(tmp_path, capsys):
    """The default (quick) reproduction: 6 runs (DCPG and SA for 3 gradients, seed 0), both figures,
    the curves, a summary that rederive reproduces, quick-labelled verdicts; a second call reuses
    every run."""
    out = experiments.reproduce(Navigation.NAME, out=tmp_path, progress=True, workers=2)
    printed = " ".join(capsys.readouterr().out.split())
    summary = out[Navigation.NAME]
    folder = tmp_path / Navigation.NAME
    assert json.loads((folder / "summary.json").read_text()) == json.loads(json.dumps(summary))
    results = summary["results"]
    assert_same(Navigation.rederive(results), results, rel=1e-9)
    assert results["protocol"] == dict(ZV.QUICK) and results["full"] is False
    for name in ("REINFORCE", "A2C", "PPO"):
        r = results["estimators"][name]
        M = np.asarray(r["runs"])
        assert M.shape == (1, 5, 4) and np.all(M >= 0)
        assert np.all(np.asarray(r["crashed"]) <= 1)
    for fig in experiments.FIGURES[Navigation.NAME]:
        assert (folder / fig).stat().st_size > 20_000
    assert (folder / "curves.csv").read_text().startswith("curve,iteration,mean,spread,band,runs")
    assert "[6/6] zeng2021-navigation" in printed
    assert "quick run: too few seeds/iterations to decide" in printed
    assert all("quick run" in r[2] for r in Navigation.headline(results) if "paired" in r[2])
    block = experiments.render_readme_block(out)
    assert "Paper 004 Table 1 on MiniWorld" in block and "REINFORCE: DCPG (proposed)" in block
    assert "## Paper 004, multi-task visual navigation" in experiments.render_docs(out)
    runs = sorted(p.name for p in (folder / "runs").iterdir())
    assert len(runs) == 6
    again = experiments.reproduce(Navigation.NAME, out=tmp_path, progress=True, workers=1)
    assert again[Navigation.NAME] == summary
    assert capsys.readouterr().out.count("(reused)") == 6
    assert sorted(p.name for p in (folder / "runs").iterdir()) == runs


@needs_render
def test_grid_resumes_an_interrupted_env_run_and_reuses_a_finished_one(tmp_path):
    """run_one finds an interrupted EnvDCPGConfig run by its config and finishes it in the same
    folder (no second folder); then it reuses it."""
    from baselines.consensus.envtasks import EnvDCPGConfig, run_dcpg_env
    from baselines.experiments.dcpg_grid import load_dcpg_run, run_one

    cfg = EnvDCPGConfig(
        env_kwargs={"resolution": 64, "max_cycles": 5},
        iters=2,
        eval_every=1,
        eval_episodes=2,
        checkpoint_every=1,
        communicate=False,
        out=str(tmp_path),
    )
    run_dcpg_env(cfg, stop_after=1)
    (first,) = list(tmp_path.iterdir())
    assert not (first / "final.npz").exists()
    d, reused, _ = run_one(cfg)
    assert d == str(first) and not reused and (first / "final.npz").exists()
    run = load_dcpg_run(first, cfg)
    assert run.final["distance"].shape == (5, 4, 2)
    assert [int(r["iteration"]) for r in run.metrics] == [0, 1, 2]
    assert run_one(cfg)[:2] == (str(first), True)
