"""The examples run: the quickstart snippet and a short version of the main job."""

from __future__ import annotations

import json
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

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


def test_reproductions_smoke(tmp_path):
    """Every reproduction runs end to end (one seed) and writes its figure and summary."""
    from baselines.experiments import REPRODUCTIONS, reproduce

    out = reproduce("all", out=tmp_path, seeds=1, progress=False)
    assert set(out) == set(REPRODUCTIONS)
    for name in REPRODUCTIONS:
        folder = tmp_path / name
        assert json.loads((folder / "summary.json").read_text())["results"]
        assert any(p.suffix == ".png" and p.stat().st_size > 10_000 for p in folder.iterdir())
    coord = out["chen2022-coordination"]
    assert coord["N=3 NPG-BR (K=5)"]["final_nash_gap"]["mean"] < 1e-3  # converged in 150 iterations
    # a second call reuses the finished runs instead of training again
    again = reproduce("chen2022-coordination", out=tmp_path, seeds=1, progress=False)
    assert again["chen2022-coordination"] == coord


@pytest.mark.slow
def test_full_coordination_reproduction_matches_readme(tmp_path):
    """python -m baselines reproduce chen2022-coordination --full: the README's numbers."""
    from baselines.experiments import reproduce

    res = reproduce("chen2022-coordination", out=tmp_path, full=True, progress=False)["chen2022-coordination"]
    for n, k in ((2, 50), (3, 5)):
        assert all(x is not None for x in res[f"N={n} NPG-BR (K={k})"]["iterations_to_nash_gap_below_1e-3"])
        assert all(x is not None for x in res[f"N={n} NPG"]["iterations_to_nash_gap_below_1e-3"])
    for n in (2, 3, 5):
        assert all(x is None for x in res[f"N={n} PG"]["iterations_to_nash_gap_below_1e-3"])
        assert res[f"N={n} PG"]["final_poa"]["mean"] < res[f"N={n} NPG"]["final_poa"]["mean"]
