"""Shared benchmark helpers: timing, PettingZoo step throughput, the result table, and where
results go.

Every script prints its table and writes ``benchmarks/runs/<name>.json`` (not tracked). The
committed reference, ``benchmarks/results/<name>.json``, changes only when asked for with
``--update-reference``; the README's benchmark tables are rendered from it
(:func:`render_readme_tables`, checked by ``tests/test_docs.py``).
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


def best_of_interleaved(fns: list[Callable[[], object]], repeats: int) -> list[float]:
    """Minimum wall time of each function over ``repeats`` rounds that call them in turn, seconds."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, t in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            t.append(time.perf_counter() - t0)
    return [min(t) for t in times]


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


def report(rows: list[tuple[str, float, str, float | None]], width: int | None = None) -> list[dict]:
    """Print (name, value, unit, target) rows as a table that fits the terminal (long names wrap
    inside their column); rates (unit ending in /s) must reach the target, times (unit "s") stay
    below it. Returns the rows as dicts for the JSON file."""
    from baselines.console import print_table

    out, table = [], []
    for name, val, unit, target in rows:
        higher = unit.endswith("/s")
        ok = "" if target is None else ("yes" if (val >= target if higher else val <= target) else "NO")
        if unit == "x":  # a ratio, lower is better
            shown, tgt = f"{val:.2f}x", "" if target is None else f"{target:g}x"
        elif unit == "value":  # a measured quantity (a return, a Nash gap): no direction
            shown, tgt = f"{val:.4g}", ""
        else:
            shown = f"{val:,.0f}" if higher else (f"{val * 1e3:,.2f} ms" if val < 10 else f"{val:,.1f} s")
            tgt = "" if target is None else (f"{target:,.0f}" if higher else f"{target * 1e3:,.0f} ms")
        table.append((name, shown, tgt, ok))
        out.append({"name": name, "value": val, "unit": unit, "target": target, "ok": ok or None})
    print_table(None, ["benchmark", "value", "target", "ok"], table, width=width, align="<>><")
    return out


HERE = Path(__file__).resolve().parent
#: Benchmark name -> title of its README table, in README order.
REFERENCES = {
    "spine": "Exact model and analysis (bench_spine.py)",
    "exact_floor": "Exact evaluate and Nash gap against a plain dense-solve floor (bench_exact_floor.py)",
    "envs": "Every environment (bench_envs.py)",
    "sampler": "Batched sampler and sampled training (bench_sampler.py)",
    "baselines": "Training (bench_baselines.py)",
    "dcpg": "Decentralized consensus policy gradient (bench_dcpg.py)",
    "nav": "Navigation envs on MiniWorld, nav extra (bench_nav.py)",
    "dcpg_env": "DCPG with CNN policies on the navigation envs (bench_dcpg_env.py)",
    "soft": "Report 002's soft value iteration, Shapley's minimax and soft Q-learning (bench_soft.py)",
    "sb3": "Stable-Baselines3 through baselines.sb3 (bench_sb3.py)",
    "vector": "Vector envs (bench_vector.py)",
    "threads": "Torch threads for small networks (bench_threads.py)",
    "rllib": "RLlib, optional extra in its own environment (bench_rllib.py)",
    "benchmarl": "BenchMARL, optional extra in its own environment (bench_benchmarl.py)",
    "torchrl": "TorchRL: batched env vs SerialEnv, exact metrics (bench_torchrl.py)",
    "executor": "Grids of runs: process pool vs Ray, ray extra (bench_executor.py)",
}
README_START = "<!-- benchmarks:start (generated from benchmarks/results/*.json) -->"
README_END = "<!-- benchmarks:end -->"


def add_output_args(ap: argparse.ArgumentParser) -> None:
    """``--update-reference``: also overwrite the committed ``benchmarks/results/<name>.json``."""
    ap.add_argument(
        "--update-reference",
        action="store_true",
        help="also write the committed reference benchmarks/results/<name>.json (not with --quick)",
    )


def save_results(name: str, args: argparse.Namespace, **payload: object) -> None:
    """Write ``payload`` plus the Python version and machine to ``benchmarks/runs/<name>.json``
    (and to the reference ``benchmarks/results/<name>.json`` with ``--update-reference``)."""
    if getattr(args, "update_reference", False) and getattr(args, "quick", False):
        raise SystemExit("error: --update-reference needs a full run (drop --quick)")
    meta = {"python": platform.python_version(), "numpy": np.__version__, "machine": platform.machine()}
    text = json.dumps({**payload, **meta}, indent=2) + "\n"
    paths = [HERE / "runs" / f"{name}.json"]
    if getattr(args, "update_reference", False):
        paths.append(HERE / "results" / f"{name}.json")
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path}")
    if getattr(args, "update_reference", False):
        update_readme()


def update_readme(readme: Path = HERE.parent / "README.md") -> None:
    """Rewrite the README's benchmark tables from the committed reference."""
    text = readme.read_text()
    head, rest = text.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    readme.write_text(head + render_readme_tables() + tail)
    print(f"updated the benchmark tables of {readme}")


def _value(row: dict) -> str:
    unit = row["unit"]
    if unit == "x":
        return f"{row['value']:.2f}x"
    if unit == "value":
        return f"{row['value']:.4g}"
    if unit.endswith("/s"):
        return f"{row['value']:,.0f} {unit}"
    v = row["value"]
    return f"{v * 1e3:,.2f} ms" if v < 10 else f"{v:,.1f} s"


def _target(row: dict) -> str:
    t = row.get("target")
    if t is None:
        return ""
    if row["unit"] == "x":
        return f"<= {t:g}x"
    if row["unit"].endswith("/s"):
        return f">= {t:,.0f}"
    return f"<= {t * 1e3:,.0f} ms" if t < 10 else f"<= {t:,.0f} s"


def render_readme_tables(results_dir: Path = HERE / "results") -> str:
    """The README's benchmark tables, from the committed reference JSON files."""
    parts = [README_START, ""]
    for name, title in REFERENCES.items():
        path = results_dir / f"{name}.json"
        if not path.exists():
            continue
        data = json.loads(path.read_text())
        parts += [f"**{title}**", "", "| benchmark | measured | target |", "|---|---|---|"]
        parts += [f"| {r['name']} | {_value(r)} | {_target(r)} |" for r in data["results"]]
        notes = data.get("notes", [])
        parts += [""] + [f"{n}" for n in notes] + ([""] if notes else [])
    parts.append(README_END)
    return "\n".join(parts)
