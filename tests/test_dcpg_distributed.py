"""DCPG across processes: torchrun with 4 gloo ranks (one per task) against the single-process backend.

Both backends draw agent i's samples from the generator seeded by (seed, i), so the iterates agree to
round-off (the single process mixes with one product by W, the ranks sum their neighbours' logits).
A distributed run killed with SIGKILL (every rank and the launcher) resumes to the same result.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from baselines.consensus import DCPGConfig, run_dcpg  # noqa: E402

LAYOUT = ["S..#/.W.G/....", "S.G#/.W../....", "G..#/.W../...S", "S...//.W#G/...."]
OPTIONS = dict(gamma=0.9, slip=0.1, gradient="montecarlo", episodes=2, horizon=30, alpha=0.5, lam=0.05)
# a network with A2C local steps, Adam and local critics (paper 004 §5.2's setting, small)
NEURAL = dict(OPTIONS, policy="mlp", hidden="8", view=1, gradient="a2c", optimizer="adam", alpha=0.01)


def _descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (from /proc): killing the launcher's group misses the ranks."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        kids = children.get(todo.pop(), [])
        out += kids
        todo += kids
    return out


def _launch(args: list[str], **kw) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "4",
           "-m", "baselines", "dcpg", "--backend", "dist", "--no-progress", *args]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, **kw)


def _flags(iters: int, out: Path, checkpoint_every: int = 25, options: dict = OPTIONS) -> list[str]:
    flags = ["--layout", *LAYOUT, "--iters", str(iters), "--out", str(out)]
    flags += ["--checkpoint-every", str(checkpoint_every), "--eval-every", "50"]
    for k, v in options.items():
        flags += ["--" + k.replace("_", "-"), str(v)]
    return flags


def _single(tmp_path: Path, iters: int, options: dict = OPTIONS):
    return run_dcpg(
        DCPGConfig(layout=LAYOUT, iters=iters, out=str(tmp_path / "single"), eval_every=50, **options)
    )


def _metrics(run_dir: Path) -> np.ndarray:
    """metrics.csv without its wall_time column."""
    return np.loadtxt(run_dir / "metrics.csv", delimiter=",", skiprows=1)[:, :-1]


def _final(out: Path) -> tuple[np.ndarray, Path]:
    (run_dir,) = list(out.iterdir())
    return np.load(run_dir / "final.npz")["thetas"], run_dir


@pytest.mark.parametrize("options", [OPTIONS, NEURAL], ids=["tabular", "mlp-a2c-adam"])
def test_four_ranks_give_the_single_process_iterates(tmp_path, options):
    proc = _launch(_flags(120, tmp_path / "dist", options=options))
    log, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, log
    dist_thetas, run_dir = _final(tmp_path / "dist")
    single = _single(tmp_path, 120, options)
    np.testing.assert_allclose(dist_thetas, single.thetas, rtol=0, atol=1e-12)
    assert np.abs(single.thetas).max() > 0.1  # the agents did move
    np.testing.assert_allclose(_metrics(run_dir), _metrics(single.run_dir), rtol=0, atol=1e-10)
    assert "objective" in log


def test_killed_distributed_run_resumes_to_the_same_result(tmp_path):
    out = tmp_path / "dist"
    proc = _launch(_flags(400, out, checkpoint_every=20), start_new_session=True)
    deadline = time.time() + 240
    try:
        while time.time() < deadline:
            ck = list(out.glob("*/checkpoints/agent0003_*.npz"))
            if any(int(p.stem.split("_")[1]) >= 100 for p in ck):
                break
            if proc.poll() is not None:
                pytest.fail("the run ended before it could be killed:\n" + proc.stdout.read())
            time.sleep(0.05)
        else:
            pytest.fail("no checkpoint at iteration >= 100 within the time limit")
    finally:
        ranks = _descendants(proc.pid)  # torchrun starts each rank in a session of its own
        os.killpg(proc.pid, signal.SIGKILL)
        for pid in ranks:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait()
    (run_dir,) = list(out.iterdir())
    assert not (run_dir / "final.npz").exists()
    resumed = _launch(["--resume", str(run_dir)])
    log, _ = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, log
    thetas, _ = _final(out)
    single = _single(tmp_path, 400)
    np.testing.assert_allclose(thetas, single.thetas, rtol=0, atol=1e-11)
    np.testing.assert_allclose(_metrics(run_dir), _metrics(single.run_dir), rtol=0, atol=1e-10)
