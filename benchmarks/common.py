"""Shared benchmark helpers: timing, PettingZoo step throughput and the result table."""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


def best_of(fn: Callable[[], object], repeats: int) -> float:
    """Minimum wall time of ``repeats`` calls, seconds."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def step_throughput(env, n_steps: int, seed: int = 0) -> float:
    """Agent-steps per second through ``ParallelEnv.step`` (random actions drawn beforehand)."""
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    agents = list(env.possible_agents)
    sizes = [env.action_space(a).n for a in agents]
    acts = [
        {a: int(x) for a, x in zip(agents, row)}
        for row in rng.integers(0, sizes, size=(n_steps, len(agents)))
    ]
    done_steps = 0
    t0 = time.perf_counter()
    for act in acts:
        if not env.agents:
            env.reset()
        env.step({a: act[a] for a in env.agents})
        done_steps += len(agents)
    return done_steps / (time.perf_counter() - t0)


def report(rows: list[tuple[str, float, str, float | None]], width: int = 78) -> list[dict]:
    """Print (name, value, unit, target) rows; rates (unit ending in /s) must reach the target,
    times (unit "s") stay below it. Returns the rows as dicts for the JSON file."""
    print(f"{'benchmark':<{width}} {'value':>14}  {'target':>10}  ok")
    out = []
    for name, val, unit, target in rows:
        higher = unit.endswith("/s")
        ok = "" if target is None else ("yes" if (val >= target if higher else val <= target) else "NO")
        shown = f"{val:,.0f}" if higher else f"{val * 1e3:,.2f} ms"
        tgt = "" if target is None else (f"{target:,.0f}" if higher else f"{target * 1e3:,.0f} ms")
        print(f"{name:<{width}} {shown:>14}  {tgt:>10}  {ok}")
        out.append({"name": name, "value": val, "unit": unit, "target": target, "ok": ok or None})
    return out


def save_results(path: Path, **payload: object) -> None:
    """Write ``payload`` plus the Python version and machine as JSON to ``path`` and say so."""
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"python": platform.python_version(), "numpy": np.__version__, "machine": platform.machine()}
    path.write_text(json.dumps({**payload, **meta}, indent=2))
    print(f"wrote {path}")
