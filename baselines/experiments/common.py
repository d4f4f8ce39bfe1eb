"""Machinery shared by the reproductions: a grid of runs (in parallel processes or as Ray tasks,
reusing finished runs), per-run summaries, curves, tables, and the generated documentation.

A reproduction is a module with ``TITLE``, ``PAPER``, ``DESCRIPTION`` (markdown) and three
functions: ``run(ctx) -> results`` (trains its grid and draws its figures, returns a JSON-able
dict), ``headline(results) -> rows`` (the README's rows: experiment, what the paper reports, what we
measured) and ``table(results) -> (columns, rows)`` (the detailed table of docs/reproductions.md).
Tables are rendered from the results by code, so the README, the docs and ``summary.json`` cannot
disagree (a test re-renders them from the committed summaries).
"""

from __future__ import annotations

import csv
import json
import math
import multiprocessing
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from baselines import console, runs
from baselines.experiments import executors
from baselines.train import RunResult, TrainConfig, config_dict, l1_accuracy, train

__all__ = [
    "gap_value",
    "ROUNDOFF_GAP",
    "Context",
    "Curve",
    "run_grid",
    "load_run",
    "first_below",
    "first_from",
    "stack",
    "write_curves",
    "write_run_curves",
    "markdown_table",
    "print_table",
    "fmt",
    "fmt_range",
    "plt",
    "L1_FLOOR",
]

#: L1-accuracy and Nash gaps are drawn on log axes clipped at this floor.
L1_FLOOR = 1e-12
#: Nash gaps below this are round-off of the exact solvers (their size depends on the solver, not
#: on the policy): summaries report them as 0, so that tables do not change with the solvers.
ROUNDOFF_GAP = 1e-9


def gap_value(x: float) -> float:
    """A Nash gap for a summary: 0 below :data:`ROUNDOFF_GAP` (round-off), else the value."""
    return 0.0 if x < ROUNDOFF_GAP else float(x)


@dataclass(frozen=True)
class Context:
    """What a reproduction is asked to do.

    Attributes:
        out: Its output folder (``<out>/<name>``); runs go to ``<out>/<name>/runs``.
        full: The papers' sizes (else the short version).
        seeds: Seeds to run (None: the paper's number of runs, seeds 0, 1, ...).
        progress: Print one line per finished run.
        workers: Parallel worker processes (1: train in this process); with Ray, the runs in
            flight.
        max_iters: Cap on every run's iterations (a quick look, not the paper's protocol).
        executor: Where the runs train: ``"process"`` (a pool of local processes) or ``"ray"``
            (Ray tasks; see :mod:`baselines.experiments.executors`). Same results either way.
    """

    out: Path
    full: bool = False
    seeds: tuple[int, ...] | None = None
    progress: bool = True
    workers: int = 1
    max_iters: int | None = None
    executor: str = "process"

    def seed_list(self, paper: int, short: int) -> list[int]:
        """The seeds to run: the user's, else ``range(paper)`` (full) or ``range(short)``."""
        if self.seeds is not None:
            return list(self.seeds)
        return list(range(paper if self.full else short))


@dataclass(frozen=True)
class Curve:
    """One algorithm's runs under one protocol: a label, the configs (one per seed), a style.

    Attributes:
        label: Legend and summary key.
        configs: One :class:`TrainConfig` per seed.
        color: Matplotlib colour (one colour per algorithm across panels).
        style: Line style.
        meta: Anything the reproduction wants to keep with the curve (algorithm, N, protocol).
    """

    label: str
    configs: list[TrainConfig]
    color: str = "C0"
    style: str = "-"
    meta: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------------ running
def find_run(cfg: TrainConfig) -> Path | None:
    """The folder of a finished or interrupted run of exactly ``cfg`` under ``cfg.out``, if any."""
    return runs.find_run(cfg.out, config_dict(cfg))


def run_one(cfg: TrainConfig, progress: bool = False) -> tuple[str, bool, float]:
    """Train ``cfg`` unless a finished run of it exists (resume an interrupted one).

    Returns:
        (run folder, whether it was reused, seconds spent).
    """
    t0 = time.perf_counter()
    d = find_run(cfg)
    if d is not None and (d / "final.npz").exists():
        return str(d), True, 0.0
    if d is not None:
        res = train(cfg, resume=d, progress=progress, plot=False)
    else:
        res = train(cfg, progress=progress, plot=False)
    return str(res.run_dir), False, time.perf_counter() - t0


def run_grid(name: str, curves: Sequence[Curve], ctx: Context) -> dict[str, list[RunResult]]:
    """Train every config of every curve (``ctx.workers`` processes, or Ray tasks when
    ``ctx.executor`` is ``"ray"``), reusing finished runs.

    Prints ``[k/n] <name>: <label>, seed s -> ...`` as runs finish (when ``ctx.progress``).

    Returns:
        label -> the curve's runs, in seed order.
    """
    if ctx.max_iters is not None:
        curves = [
            replace(c, configs=[replace(cfg, iters=min(cfg.iters, ctx.max_iters)) for cfg in c.configs])
            for c in curves
        ]
    # identical configs (two curves sharing a run) are trained once: two workers must never
    # write one run folder
    tasks: list[tuple[str, int, TrainConfig]] = []
    users: dict[str, list[tuple[str, int]]] = {}
    for c in curves:
        for j, cfg in enumerate(c.configs):
            key = json.dumps(config_dict(cfg), sort_keys=True)
            if key not in users:
                users[key] = []
                tasks.append((c.label, j, cfg))
            users[key].append((c.label, j))
    dirs: dict[tuple[str, int], str] = {}
    n = len(tasks)

    def report(k: int, label: str, cfg: TrainConfig, run_dir: str, reused: bool, secs: float) -> None:
        if not ctx.progress:
            return
        res = load_run(Path(run_dir))
        last = res.metrics[-1]
        how = "reused" if reused else f"{secs:.1f} s"
        stop = f"stopped at {int(last['iteration'])}" if res.stopped else f"ran {int(last['iteration'])}"
        print(
            f"[{k}/{n}] {name}: {label}, seed {cfg.seed} -> {stop}, Nash gap {fmt(last['nash_gap'])} ({how})",
            flush=True,
        )

    def done(k: int, i: int, result: tuple[str, bool, float]) -> None:
        label, j, cfg = tasks[i]
        for user in users[json.dumps(config_dict(cfg), sort_keys=True)]:
            dirs[user] = result[0]
        report(k, label, cfg, *result)

    map_runs(run_one, [cfg for _, _, cfg in tasks], ctx.workers, done, ctx.executor)
    return {c.label: [load_run(Path(dirs[c.label, j])) for j in range(len(c.configs))] for c in curves}


def map_runs(
    fn: Callable[[Any], Any], configs: Sequence[Any], workers: int, done: Callable, executor: str = "process"
) -> None:
    """``fn(cfg)`` for every config -- in ``workers`` spawned processes (one BLAS thread each), or
    here when ``workers <= 1`` -- calling ``done(k, i, result)`` as the k-th finishes (i: its index).

    ``executor="ray"``: as Ray tasks instead, at most ``workers`` in flight
    (:func:`baselines.experiments.executors.map_ray`; ``fn`` returns ``(run folder, reused,
    seconds)``).
    """
    if executor == "ray":
        executors.map_ray(fn, configs, workers, done)
        return
    if executor != "process":
        raise ValueError(f"executor must be one of {list(executors.EXECUTORS)}, got {executor!r}")
    if workers <= 1 or len(configs) <= 1:
        for k, cfg in enumerate(configs, 1):
            done(k, k - 1, fn(cfg))
        return
    mp = multiprocessing.get_context("spawn")
    init = executors.one_thread_per_worker
    with ProcessPoolExecutor(max_workers=workers, mp_context=mp, initializer=init) as pool:
        futures = {pool.submit(fn, cfg): i for i, cfg in enumerate(configs)}
        for k, fut in enumerate(as_completed(futures), 1):
            done(k, futures[fut], fut.result())


def load_run(run_dir: Path) -> RunResult:
    """A finished run from its folder (final tables, metrics, snapshots, whether it stopped)."""
    folder = runs.RunFolder(run_dir)
    fin = folder.load_final(runs.TRAIN_FINAL)
    pols = [fin[k] for k in sorted((k for k in fin if k.startswith("policy_")), key=_agent_no)]
    with open(run_dir / "metrics.csv", newline="") as f:
        rows = [{k: float(v) for k, v in r.items()} for r in csv.DictReader(f)]
    stopped = bool(fin.get("stopped", False))
    return RunResult(run_dir, None, pols, rows, fin["snapshots"], stopped, str(fin.get("stop_reason", "")))


def _agent_no(key: str) -> int:
    return int(key.rsplit("_", 1)[1])


# ------------------------------------------------------------------------------------ numbers
def column(res: RunResult, key: str) -> np.ndarray:
    """One metric of a run, shape (K,)."""
    return np.array([r[key] for r in res.metrics], dtype=float)


def iterations(res: RunResult) -> np.ndarray:
    """The evaluated iterations of a run, shape (K,) int."""
    return column(res, "iteration").astype(int)


def l1_curve(res: RunResult) -> np.ndarray:
    """Paper 001's L1-accuracy to the run's own final policy at every evaluated iteration."""
    return l1_accuracy(res.snapshots)


def stack(curves: Sequence[np.ndarray]) -> np.ndarray:
    """Runs may stop at different iterations: pad each with its last value, shape (R, K_max)."""
    n = max(len(c) for c in curves)
    return np.stack([np.concatenate([c, np.full(n - len(c), c[-1])]) for c in curves])


def first_from(ok: np.ndarray, its: np.ndarray) -> int | None:
    """First evaluated iteration from which ``ok`` (K,) bool holds to the end; None if not at the end."""
    bad = np.flatnonzero(~ok)
    if bad.size == 0:
        return int(its[0])
    return int(its[bad[-1] + 1]) if bad[-1] + 1 < len(its) else None


def first_below(curve: np.ndarray, its: np.ndarray, tol: float) -> int | None:
    """First evaluated iteration from which ``curve`` stays below ``tol``; None if it never does."""
    return first_from(curve < tol, its)


def write_curves(path: Path, series: dict[str, tuple[np.ndarray, np.ndarray]], band: str) -> None:
    """Write mean and spread of each curve; ``band`` says what the spread is ("std" or "se").

    Args:
        path: CSV file.
        series: label -> (iterations (K,), values (R, K)).
        band: ``"std"`` (standard deviation over runs, ddof = 1) or ``"se"`` (standard error of the
            mean, ddof = 1).
    """
    if band not in ("std", "se"):
        raise ValueError(f"band must be 'std' or 'se', got {band!r}")
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["curve", "iteration", "mean", "spread", "band", "runs"])
        for label, (its, Y) in series.items():
            m = Y.mean(axis=0)
            sd = Y.std(axis=0, ddof=1) if len(Y) > 1 else np.zeros_like(m)
            s = sd if band == "std" else sd / np.sqrt(len(Y))
            for k in range(len(m)):
                w.writerow(
                    [label, int(its[min(k, len(its) - 1)]), f"{m[k]:.6g}", f"{s[k]:.6g}", band, len(Y)]
                )


def write_run_curves(path: Path, curves: Sequence[Curve], results: dict[str, list[RunResult]]) -> None:
    """Each curve's POA and Nash gap over its runs (mean and standard error) into ``path`` (CSV).

    Args:
        path: CSV file (see :func:`write_curves`).
        curves: The curves run.
        results: label -> the curve's runs, as :func:`run_grid` returns them.
    """
    series = {}
    for c in curves:
        runs_ = results[c.label]
        its = iterations(runs_[0])
        series[f"{c.label} POA"] = (its, stack([column(r, "poa") for r in runs_]))
        series[f"{c.label} Nash gap"] = (its, stack([column(r, "nash_gap") for r in runs_]))
    write_curves(path, series, band="se")


# ------------------------------------------------------------------------------------ formatting
def fmt(x: float | None, digits: int = 2) -> str:
    """A number for a table: None -> "-", 0 -> "0", else ``digits`` significant digits."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if x == 0:
        return "0"
    a = abs(x)
    if 1e-3 <= a < 1e5:
        return f"{x:.{digits}g}" if a < 10**digits else f"{x:.0f}"
    return f"{x:.{max(digits - 1, 0)}e}".replace("e-0", "e-").replace("e+0", "e")


def fmt_range(values: Sequence[float | None]) -> str:
    """``"a-b"`` over the non-None values (``"a"`` if equal), ``"-"`` if none."""
    vals = [v for v in values if v is not None]
    if not vals:
        return "-"
    lo, hi = fmt(min(vals)), fmt(max(vals))
    return lo if lo == hi else f"{lo}-{hi}"


def markdown_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub markdown table."""

    def row(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    lines = [row(columns), "|" + "|".join("---" for _ in columns) + "|"]
    lines += [row(r) for r in rows]
    return "\n".join(lines)


def print_table(
    title: str, columns: Sequence[str], rows: Sequence[Sequence[str]], file=None, width: int | None = None
) -> None:
    """A plain-text table with aligned columns that fits the terminal (the end of ``reproduce``):
    long cells wrap inside their column (:func:`baselines.console.print_table`)."""
    console.print_table(title, columns, rows, file=file, width=width)


def plt():
    """matplotlib.pyplot with the Agg backend, or None when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as pyplot
    except ImportError:
        return None
    return pyplot


Headline = Callable[[dict], list[tuple[str, str, str]]]
