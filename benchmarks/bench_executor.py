"""Grids of runs on the process pool and on Ray (``reproduce --executor ray``): wall time, the cost
per run, and the same results asserted.

In one run, interleaved (pool, Ray, pool, Ray, ...; the best of each), two workers each:

* a small grid of train runs (congestion game N = 3: INPG and IPG with exact gradients, IPG with
  sampled ones, several seeds): the grid's wall time on the pool and on a local Ray instance that is
  already running (the ratio is the executor's cost on a realistic grid);
* a grid of one-iteration runs (the same configs, ``iters=1``): wall time per run, where a run is
  almost nothing but its bookkeeping (finding its folder, writing config, metrics and final
  tables, loading them back) and the executor's dispatch -- the cost each executor adds to a run,
  beside the same runs in this process one after another;
* starting and shutting down the local Ray instance (once per ``reproduce`` call);
* a tiny reproduction (``chen2022-coordination``, one seed, capped iterations) on both, whose
  ``summary.json`` must be the same.

Every grid's run folders are compared between the executors (metrics but their wall times, final
tables, snapshots: bit for bit); a difference ends the script with an error. Fresh folders for every
pass (nothing reused). The machine may be shared: the load average is recorded, and the ratios,
taken in one run, are what to compare.

Run: ``python benchmarks/bench_executor.py [--quick] [--update-reference]`` (needs the ray extra).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import add_output_args, report, save_results  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from baselines.experiments import executors, reproduce  # noqa: E402
from baselines.experiments.common import Context, Curve, run_grid  # noqa: E402
from baselines.train import RunResult, TrainConfig  # noqa: E402

WORKERS = 2
REP = "reproduce chen2022-coordination (1 seed, 10 iterations)"


def curves(out: Path, seeds: int, iters: int) -> list[Curve]:
    """The grid: three algorithm/estimator pairs on the congestion game (N = 3), ``seeds`` seeds."""
    base = dict(env="mpg/Congestion-v0", env_kwargs={"n_agents": 3}, eval_every=10, checkpoint_every=50)
    kinds = (("inpg", "exact"), ("ipg", "exact"), ("ipg", "sampled"))
    return [
        Curve(
            f"{algo} {est}",
            [
                TrainConfig(**base, algo=algo, estimator=est, iters=iters, seed=s, out=str(out))
                for s in range(seeds)
            ],
        )
        for algo, est in kinds
    ]


def timed_grid(executor: str, out: Path, seeds: int, iters: int, workers: int = WORKERS):
    """Wall time of one grid in a fresh folder, and its runs."""
    ctx = Context(out=out, workers=workers, executor=executor, progress=False)
    t0 = time.perf_counter()
    res = run_grid("bench", curves(out / "runs", seeds, iters), ctx)
    return time.perf_counter() - t0, res


def _same_value(a, b) -> bool:
    return a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b))


def assert_same(a: dict[str, list[RunResult]], b: dict[str, list[RunResult]], what: str) -> None:
    """The two executors' runs are the same: metrics (but wall time), final tables, snapshots."""
    import numpy as np

    for label in a:
        for ra, rb in zip(a[label], b[label], strict=True):
            rows_a = [{k: v for k, v in r.items() if k != "wall_time"} for r in ra.metrics]
            rows_b = [{k: v for k, v in r.items() if k != "wall_time"} for r in rb.metrics]
            same = len(rows_a) == len(rows_b) and all(
                x.keys() == y.keys() and all(_same_value(x[k], y[k]) for k in x)
                for x, y in zip(rows_a, rows_b)
            )
            same = same and all(np.array_equal(x, y) for x, y in zip(ra.policies, rb.policies, strict=True))
            same = same and np.array_equal(ra.snapshots, rb.snapshots)
            if not same:
                raise SystemExit(f"error: {what}: {label}: {ra.run_dir} and {rb.run_dir} differ")


def _strip_dirs(x):
    if isinstance(x, dict):
        return {k: _strip_dirs(v) for k, v in x.items() if k != "run_dir"}
    if isinstance(x, list):
        return [_strip_dirs(v) for v in x]
    return x


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="small grids, one pass (smoke test)")
    add_output_args(ap)
    args = ap.parse_args()
    executors.check_executor("ray", None)  # error: ... naming the install command
    seeds, iters = (2, 30) if args.quick else (6, 300)
    tiny_seeds = 2 if args.quick else 10
    repeats = 1 if args.quick else 3
    n_grid, n_tiny = 3 * seeds, 3 * tiny_seeds  # three curves
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        # the tiny reproduction first, each executor starting what it needs (Ray: its instance)
        summaries, wall_rep = {}, {}
        for ex in ("process", "ray"):
            t0 = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()):
                res = reproduce(
                    "chen2022-coordination", out=root / f"rep-{ex}", seeds=[0], max_iters=10, progress=False,
                    workers=WORKERS, executor=ex,
                )  # fmt: skip
            wall_rep[ex] = time.perf_counter() - t0
            summaries[ex] = _strip_dirs(json.loads(json.dumps(res["chen2022-coordination"])))
        if summaries["process"] != summaries["ray"]:
            raise SystemExit("error: the reproduction's summary differs between the pool and Ray")

        t0 = time.perf_counter()
        with executors.session("ray", None, WORKERS, progress=False):
            t_start = time.perf_counter() - t0
            best = {("grid", ex): math.inf for ex in ("process", "ray")}
            for size in (1, 2):
                best.update({(f"tiny{size}", ex): math.inf for ex in ("process", "ray", "here")})
            for r in range(repeats):
                got = {}
                for ex in ("process", "ray"):
                    wall, got[ex] = timed_grid(ex, root / f"grid-{ex}-{r}", seeds, iters)
                    best["grid", ex] = min(best["grid", ex], wall)
                assert_same(got["process"], got["ray"], f"grid pass {r + 1}")
                for size in (1, 2):
                    tiny = {}
                    for ex, w in (("process", WORKERS), ("ray", WORKERS), ("here", 1)):
                        folder = root / f"tiny{size}-{ex}-{r}"
                        where = "process" if ex == "here" else ex
                        wall, tiny[ex] = timed_grid(where, folder, size * tiny_seeds, 1, w)
                        best[f"tiny{size}", ex] = min(best[f"tiny{size}", ex], wall)
                    assert_same(tiny["process"], tiny["ray"], f"one-iteration grid pass {r + 1}")
                    assert_same(tiny["process"], tiny["here"], f"one-iteration grid pass {r + 1}")
            t1 = time.perf_counter()
        t_stop = time.perf_counter() - t1
    load1 = os.getloadavg()

    g = f"{n_grid} runs of {iters} iterations"
    # one-iteration grids of M and 2M runs: cost per run (slope) and per grid (intercept)
    per_run = {ex: (best["tiny2", ex] - best["tiny1", ex]) / n_tiny for ex in ("process", "ray", "here")}
    fixed = {ex: best["tiny1", ex] - n_tiny * per_run[ex] for ex in ("process", "ray", "here")}
    t = f"one-iteration runs ({n_tiny} and {2 * n_tiny})"
    rows = [
        (f"grid of {g}, process pool ({WORKERS} workers): wall", best["grid", "process"], "s", None),
        (f"grid of {g}, Ray (local instance running, {WORKERS} CPUs): wall", best["grid", "ray"], "s", None),
        ("  Ray / pool, wall of the grid", best["grid", "ray"] / best["grid", "process"], "x", None),
        (f"{t} in this process, one after another: wall per run", per_run["here"], "s", None),
        (f"{t}, process pool: wall per run", per_run["process"], "s", None),
        (f"{t}, process pool: fixed cost per grid (starting the workers)", fixed["process"], "s", None),
        (f"{t}, Ray: wall per run", per_run["ray"], "s", None),
        ("  Ray - pool, wall per run", per_run["ray"] - per_run["process"], "s", None),
        ("start a local Ray instance (once per reproduce call)", t_start, "s", None),
        ("shut it down", t_stop, "s", None),
        (f"{REP}, process pool: wall", wall_rep["process"], "s", None),
        (f"{REP}, Ray: wall (its instance started and shut down)", wall_rep["ray"], "s", None),
    ]
    out = report(rows)
    notes = [
        f"Same run folders (metrics but wall times, final tables, snapshots) and the same summary.json on "
        f"both executors, checked by the script. Best of {repeats} interleaved passes, {WORKERS} workers "
        f"each, fresh folders, on {os.cpu_count()} CPUs shared with other work; load average (1 min) "
        f"{load0[0]:.1f} before, {load1[0]:.1f} after. The pool starts its worker processes for every "
        "grid (a reproduction runs one grid per stage); Ray starts its instance once per reproduce call "
        f"and keeps its workers: its fixed cost per grid, the intercept of the same fit, was "
        f"{fixed['ray'] * 1e3:.0f} ms (the pool's {fixed['process'] * 1e3:.0f} ms)."
    ]
    for n in notes:
        print(n)
    save_results("executor", args, results=out, notes=notes, quick=args.quick, load=[load0, load1])


if __name__ == "__main__":
    main()
