"""The torch thread policy (baselines.threads): every entry point and helper through which a user
reaches torch sets one intra-op thread, unless the user chose a count.

The thread count is global to a process, so each check runs in a fresh interpreter without the
thread variables the test session sets (tests/conftest.py). Each starts by giving torch the counts
of a 3-core machine (both pools at 3 threads), so that "set to 1" is visible on any machine. No
timing here: benchmarks/bench_threads.py measures what the policy buys.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("stable_baselines3")

ROOT = Path(__file__).resolve().parents[1]

PRELUDE = """
import os, sys
import torch
torch.set_num_interop_threads(3)
torch.set_num_threads(3)  # torch's start-up counts on a 3-core machine
import baselines.threads as T

def fresh():
    T._ours = None
    torch.set_num_threads(3)

def show(name):
    print(name, torch.get_num_threads(), flush=True)
"""


def _run(code: str, tmp_path: Path, env: dict[str, str] | None = None) -> dict[str, int]:
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    base.pop("MPG_TORCH_THREADS", None)
    base["PYTHONPATH"] = os.pathsep.join([str(ROOT), base.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(code)],
        cwd=tmp_path,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = {}
    for line in proc.stdout.splitlines():
        parts = line.rsplit(" ", 1)
        if len(parts) == 2 and parts[1].lstrip("-").isdigit():
            out[parts[0]] = int(parts[1])
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_every_entry_point_and_helper_sets_one_thread(tmp_path):
    code = """
    import numpy as np, pettingzoo
    import mpg_envs
    from mpg_envs import coordination_v0

    fresh(); show("start")
    fresh(); T.torch_threads(); show("torch_threads")

    from baselines.policies.neural import TorchSoftmaxPolicy
    env = coordination_v0.parallel_env(n_agents=2)
    dyn = env.dynamics
    nets = [torch.nn.Linear(dyn.observation_shape("vector")[0], k) for k in dyn.action_sizes]
    fresh(); pol = TorchSoftmaxPolicy(nets, dyn.action_sizes, "vector", dyn); show("TorchSoftmaxPolicy")

    from baselines.consensus.policies import MLP
    fresh(); MLP(np.zeros((2, 5, 3)), 4, (8,)); show("consensus.MLP")

    from baselines.sb3 import ExactMetricsCallback, SB3Policy, make_vec_env
    fresh(); venv = make_vec_env("mpg/Coordination-v0", n_envs=2, seed=0, n_agents=2, observation="vector")
    show("make_vec_env")
    penv = pettingzoo.make("parallel", "mpg/Coordination-v0", n_agents=2, observation="vector")
    fresh(); cb = ExactMetricsCallback(penv, every=64); show("ExactMetricsCallback")
    from stable_baselines3 import PPO
    model = PPO("MlpPolicy", venv, n_steps=16, batch_size=32, seed=0)
    fresh(); SB3Policy(model, (2, 2), "vector").table(penv.unwrapped.dynamics); show("SB3Policy.table")

    try:
        from baselines.torchrl_envs import make_torchrl_env
        import torchrl  # noqa: F401
    except ImportError:
        pass
    else:
        fresh(); make_torchrl_env("mpg/Coordination-v0", n_agents=2, observation="vector")
        show("make_torchrl_env")

    from baselines.cli import main
    fresh()
    assert main(["train", "--env", "mpg/Coordination-v0", "--env-kwargs", "n_agents=2", "--algo", "nn_pg",
                 "--iters", "3", "--out", "runs", "--no-progress"]) == 0
    show("cli train nn_pg")
    fresh()
    assert main(["dcpg", "--layout", "chain_reversed", "--policy", "mlp", "--hidden", "4",
                 "--gradient", "exact", "--iters", "2", "--out", "runs", "--no-progress"]) == 0
    show("cli dcpg mlp")
    fresh()
    assert main(["sb3", "--env-kwargs", "n_agents=2", "--steps", "64", "--n-envs", "2",
                 "--eval-every", "64", "--out", "runs", "--no-progress"]) == 0
    show("cli sb3")
    fresh()
    from baselines.consensus.distributed import DistributedBackend
    from baselines.consensus.graphs import Topology
    DistributedBackend(Topology.make("complete", 1)); show("DistributedBackend (a torchrun rank)")
    """
    env = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "RANK": "0", "WORLD_SIZE": "1"}
    got = _run(code, tmp_path, env)
    assert got.pop("start") == 3
    assert len(got) >= 10, got
    assert all(v == 1 for v in got.values()), got


def test_the_users_choice_wins(tmp_path):
    code = """
    # a count set with torch.set_num_threads before our first call
    T._ours = None; torch.set_num_threads(2); T.torch_threads(); show("user set before")
    # ... or after it
    fresh(); T.torch_threads(); torch.set_num_threads(2); T.torch_threads(); show("user set after")
    # the standard variables: torch read them at start-up, we leave its count
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "2"; T._ours = None; torch.set_num_threads(2); T.torch_threads(); show(var)
        del os.environ[var]
    # ours: a count, or torch's default
    os.environ["MPG_TORCH_THREADS"] = "2"; fresh(); T.torch_threads(); show("MPG_TORCH_THREADS=2")
    os.environ["OMP_NUM_THREADS"] = "1"; fresh(); T.torch_threads(); show("MPG_TORCH_THREADS=2 over OMP")
    del os.environ["OMP_NUM_THREADS"]
    os.environ["MPG_TORCH_THREADS"] = "default"; fresh(); T.torch_threads(); show("MPG_TORCH_THREADS=default")
    for bad in ("0", "two", "-1"):
        os.environ["MPG_TORCH_THREADS"] = bad
        try:
            T.torch_threads()
        except ValueError as err:
            assert "MPG_TORCH_THREADS must be a positive integer or 'default'" in str(err), err
            print("refused", bad, "1")
    del os.environ["MPG_TORCH_THREADS"]
    fresh(); T.torch_threads(4); show("n=4")
    # a library restoring torch's start-up count is not the user's choice: ours again
    fresh(); T.torch_threads(); torch.set_num_threads(3); T.torch_threads(); show("start-up count restored")
    try:  # the library that does it: TorchRL's SerialEnv.close()
        from torchrl.envs import SerialEnv
        from baselines.torchrl_envs import make_torchrl_env
    except ImportError:
        print("after SerialEnv.close 1")
    else:
        fresh(); T.torch_threads()
        env = SerialEnv(2, lambda: make_torchrl_env("mpg/Coordination-v0", n_agents=2))
        env.rollout(3); env.close(); T.torch_threads(); show("after SerialEnv.close")
    """
    got = _run(code, tmp_path)
    assert got == {
        "user set before": 2,
        "user set after": 2,
        "OMP_NUM_THREADS": 2,
        "MKL_NUM_THREADS": 2,
        "MPG_TORCH_THREADS=2": 2,
        "MPG_TORCH_THREADS=2 over OMP": 2,
        "MPG_TORCH_THREADS=default": 3,
        "refused 0": 1,
        "refused two": 1,
        "refused -1": 1,
        "n=4": 4,
        "start-up count restored": 1,
        "after SerialEnv.close": 1,
    }


def test_the_variable_reaches_a_fresh_process(tmp_path):
    """Without the prelude's simulation: a real start-up, the user's variable against ours."""
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    base["PYTHONPATH"] = os.pathsep.join([str(ROOT), base.get("PYTHONPATH", "")])
    code = "import torch, baselines; baselines.torch_threads(); print(torch.get_num_threads())"
    for value, expected in (("3", 3), (None, 1)):
        env = dict(base)
        env.pop("MPG_TORCH_THREADS", None)
        if value is not None:
            env["MPG_TORCH_THREADS"] = value
        cmd = [sys.executable, "-c", code]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, out.stderr
        assert int(out.stdout.strip()) == expected
