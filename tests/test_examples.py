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
