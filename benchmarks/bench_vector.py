"""Vector envs against Python loops over env objects, in the same run (random play, autoreset
included):

* ``mpg/GridWorldTask-v0``'s native vector entry point against Gymnasium's ``SyncVectorEnv`` of the
  same task (steps/s);
* ``mpg_envs.vector.ParallelVectorEnv`` (every copy in one call of the env's dynamics) against a
  Python loop over ``MPGParallelEnv`` copies, at 8, 64 and 1,024 copies, on the coordination game
  (N = 2) and the MultiTaskGridWorld ("no_conflict", N = 4), both with ``observation="vector"``
  (agent-steps/s);
* the SB3 vector env of ``baselines.sb3`` batched (``BatchedMPGVecEnv``) against the loop
  (``MPGVecEnv``), ``venv.step(actions)`` at 8 and 64 copies, coordination N = 2 (agent-steps/s).

Run: ``python benchmarks/bench_vector.py [--quick] [--update-reference]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import add_output_args, report, save_results  # noqa: E402

PARALLEL = [  # (label, env id, kwargs)
    ("coordination N=2", "mpg/Coordination-v0", {"n_agents": 2, "observation": "vector"}),
    (
        "MultiTaskGridWorld no_conflict N=4",
        "mpg/MultiTaskGridWorld-v0",
        {"layout": "no_conflict", "observation": "vector"},
    ),
]


def _rate(env, n: int, steps: int) -> float:
    env.reset(seed=0)
    acts = np.random.default_rng(0).integers(0, 4, (steps, n))
    t0 = time.perf_counter()
    for a in acts:
        env.step(a)
    return n * steps / (time.perf_counter() - t0)


def _timed(step, acts: np.ndarray) -> float:
    """Agent-steps/s of ``step(a)`` over the action batches ``acts`` (steps, ...)."""
    t0 = time.perf_counter()
    for a in acts:
        step(a)
    return acts[0].size * len(acts) / (time.perf_counter() - t0)


def _batched_rate(venv, steps: int) -> float:
    """Random play through a ``ParallelVectorEnv`` (it resets ended copies itself)."""
    venv.reset(seed=0)
    acts = np.random.default_rng(0).integers(
        0, venv.single_action_space.nvec, (steps, venv.num_envs, venv.n_agents)
    )
    return _timed(venv.step, acts)  # fmt: skip


def _loop_rate(envs: list, steps: int) -> float:
    """Random play through a Python loop over parallel envs (each reset when its episode ends)."""
    agents = envs[0].possible_agents
    sizes = [envs[0].action_space(a).n for a in agents]
    for k, env in enumerate(envs):
        env.reset(seed=k)
    acts = np.random.default_rng(0).integers(0, sizes, (steps, len(envs), len(agents)))

    def step(a: np.ndarray) -> None:
        for env, row in zip(envs, a.tolist()):
            if not env.agents:
                env.reset()
            live = env.agents
            env.step({ag: x for ag, x in zip(agents, row) if ag in live})

    return _timed(step, acts)


def _sb3_rate(venv, steps: int) -> float:
    venv.reset()
    acts = np.random.default_rng(0).integers(0, venv.action_space.n, (steps, venv.num_envs))
    return _timed(venv.step, acts)


def _steps(budget: float, n: int, quick: bool) -> int:
    """Steps of n copies for ``budget`` copy-steps in all (a tenth with --quick), at least 20."""
    return max(20, int(budget / n / (10 if quick else 1)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer copies and steps (smoke test)")
    add_output_args(ap)
    args = ap.parse_args()
    import gymnasium
    import pettingzoo

    import mpg_envs  # noqa: F401
    from baselines.sb3 import make_vec_env
    from mpg_envs.vector import make_parallel_vec

    rows, ratios = [], {}
    # ---------------------------------------------------------------- the single-agent grid task
    kw = dict(layout="no_conflict", task=0, slip=0.1)
    for n in (64,) if args.quick else (64, 1024):
        native = gymnasium.make_vec(
            "mpg/GridWorldTask-v0", num_envs=n, vectorization_mode="vector_entry_point", **kw
        )
        sync = gymnasium.make_vec("mpg/GridWorldTask-v0", num_envs=n, vectorization_mode="sync", **kw)
        fast = _rate(native, n, 2000 if n > 100 else 500)
        slow = _rate(sync, n, 20 if n > 100 else 50)
        ratios[f"GridWorldTask {n}"] = fast / slow
        rows += [
            (f"GridWorldTask-v0, {n} copies: vector_entry_point", fast, "steps/s", None),
            (f"GridWorldTask-v0, {n} copies: SyncVectorEnv", slow, "steps/s", None),
            (f"  speed-up at {n} copies (target >= 100x at 1024)", fast / slow, "value", None),
        ]
    # ---------------------------------------------------------------- parallel envs
    for label, env_id, env_kw in PARALLEL:
        for n in (8, 64) if args.quick else (8, 64, 1024):
            fast = _batched_rate(make_parallel_vec(env_id, n, **env_kw), _steps(1.5e5, n, args.quick))
            envs = [pettingzoo.make("parallel", env_id, **env_kw) for _ in range(n)]
            slow = _loop_rate(envs, _steps(3e4, n, args.quick))
            ratios[f"{label}, {n}"] = fast / slow
            rows += [
                (f"{label}, {n} copies: ParallelVectorEnv", fast, "agent-steps/s", None),
                (f"{label}, {n} copies: loop over MPGParallelEnv", slow, "agent-steps/s", None),
                (f"  speed-up at {n} copies", fast / slow, "value", None),
            ]
    # ---------------------------------------------------------------- SB3 vector envs
    sb3_kw = {"n_agents": 2, "observation": "vector"}
    for n in (8, 64):
        venvs = {
            b: make_vec_env("mpg/Coordination-v0", n, seed=0, batched=b, **sb3_kw) for b in (True, False)
        }
        fast = _sb3_rate(venvs[True], _steps(1.5e5, n, args.quick))
        slow = _sb3_rate(venvs[False], _steps(3e4, n, args.quick))
        ratios[f"SB3 coordination N=2, {n}"] = fast / slow
        rows += [
            (f"SB3 venv, coordination N=2, {n} copies: BatchedMPGVecEnv", fast, "agent-steps/s", None),
            (f"SB3 venv, coordination N=2, {n} copies: MPGVecEnv (loop)", slow, "agent-steps/s", None),
            (f"  speed-up at {n} copies", fast / slow, "value", None),
        ]
    out = report(rows)
    notes = [
        "The native vector env steps every copy with one call of the task's dynamics (the same code as "
        "the single env and the batched sampler); SyncVectorEnv loops over env objects in Python.",
        "ParallelVectorEnv does the same for the multi-agent envs (per copy the semantics of "
        "MPGParallelEnv, SAME_STEP autoreset); the loop steps MPGParallelEnv copies one after the other, "
        "resetting each when its episode ends. The SB3 rows are venv.step(actions) of random play "
        "through baselines.sb3 (one slot per copy and agent); the batched env still builds SB3's list "
        "of per-slot info dicts each step.",
    ]
    save_results("vector", args, results=out, ratios=ratios, notes=notes, quick=args.quick)


if __name__ == "__main__":
    main()
