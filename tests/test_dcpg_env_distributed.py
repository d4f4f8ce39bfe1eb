"""DCPG over a multi-task env across processes: torchrun with one gloo rank per task (each rank
builds and renders only its own task's env) against the single-process backend, and W = I on the
four navigation environments against four independent runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from baselines.consensus.envtasks import EnvAgents, EnvDCPGConfig, run_dcpg_env  # noqa: E402
from mpg_envs import task_env_makers  # noqa: E402

GRID = dict(
    env="mpg/MultiTaskGridWorld-v0", policy="mlp", hidden="8", gradient="a2c", alpha=0.01, critic_lr=0.01,
    episodes=2, iters=6, eval_every=3, eval_episodes=2, checkpoint_every=2,
    env_kwargs={"layout": ["S..#/.W.G/....", "S.G#/.W../...."], "observation": "onehot", "max_cycles": 20},
)  # fmt: skip
NAV = dict(
    env="mpg/IndoorNav-v0", gradient="reinforce", iters=3, eval_every=3, eval_episodes=2,
    env_kwargs={"resolution": 56, "max_cycles": 12, "environments": ("hallway", "rooms")},
)  # fmt: skip


def _miniworld_or_skip() -> None:
    try:
        task_env_makers("mpg/IndoorNav-v0", resolution=56)[0]().close()
    except ImportError as err:  # the nav extra is part of dev; CI has it
        pytest.skip(f"MiniWorld is not installed: {err}")


def _flags(options: dict, out: Path) -> list[str]:
    flags = ["--out", str(out)]
    for k, v in options.items():
        if k == "env_kwargs":
            flags += [
                "--env-kwargs",
                *[f"{a}={b!r}" if not isinstance(b, str) else f"{a}={b}" for a, b in v.items()],
            ]
        else:
            flags += ["--" + k.replace("_", "-"), str(v)]
    return flags


def _torchrun(options: dict, out: Path, ranks: int = 2) -> np.ndarray:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(ranks),
           "-m", "baselines", "dcpg", "--backend", "dist", "--no-progress"]  # fmt: skip
    cmd += _flags(options, out)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    (run,) = list(out.iterdir())
    return np.load(run / "final.npz")["thetas"], run


@pytest.mark.parametrize("options", [GRID, NAV], ids=["grid-a2c", "nav-reinforce"])
def test_two_ranks_give_the_single_process_iterates(tmp_path, options):
    if options is NAV:
        _miniworld_or_skip()
    dist, run = _torchrun(options, tmp_path / "dist")
    single = run_dcpg_env(EnvDCPGConfig(**options, out=str(tmp_path / "single")))
    np.testing.assert_allclose(dist, single.thetas, rtol=1e-6, atol=1e-9)
    z = np.load(run / "final.npz")
    assert z["distance"].shape == (3, 2, options["eval_episodes"])
    assert len(list((run / "checkpoints").glob("agent*.npz"))) == 2  # one file per rank at the end


def test_no_communication_on_the_four_navigation_envs_is_four_independent_runs(tmp_path):
    _miniworld_or_skip()
    cfg = EnvDCPGConfig(
        env_kwargs={"resolution": 56, "max_cycles": 8}, communicate=False, iters=2, eval_every=2,
        eval_episodes=2, out=str(tmp_path),
    )  # fmt: skip
    res = run_dcpg_env(cfg)
    makers = task_env_makers(cfg.env, **cfg.env_kwargs)
    assert res.thetas.shape[0] == 4
    for i in range(4):
        local = EnvAgents(cfg.normalized(), makers, [i])
        th = local.initial()[None]
        for _ in range(cfg.iters):
            th = local.update(th, th.copy(), cfg.alpha)
        local.close()
        np.testing.assert_array_equal(res.thetas[i], th[0])
