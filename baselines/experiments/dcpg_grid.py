"""A grid of DCPG runs for the paper-004 reproductions: parallel processes, finished runs reused,
interrupted ones resumed (the DCPG twin of :func:`baselines.experiments.common.run_grid`)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from baselines import runs
from baselines.consensus.dcpg import (
    CONFIG_KIND,
    DCPGConfig,
    describe_end,
    diverged_at,
    metric_fields,
    run_dcpg,
)
from baselines.experiments.common import Context, fmt, map_runs
from mpg_envs._repr import Raw, concise_repr

__all__ = ["DCPGRun", "run_dcpg_grid", "load_dcpg_run"]


@dataclass
class DCPGRun:
    """A finished DCPG run: its config, every agent's final parameters and its metrics rows."""

    config: DCPGConfig
    run_dir: Path
    thetas: np.ndarray
    metrics: list[dict[str, float]]

    def column(self, key: str) -> np.ndarray:
        """One metric at every evaluated iteration, shape (K,)."""
        return np.array([r[key] for r in self.metrics], dtype=float)

    @property
    def last(self) -> dict[str, float]:
        return self.metrics[-1]

    def __repr__(self) -> str:
        return concise_repr(
            self,
            run_dir=str(self.run_dir),
            end=describe_end(self.metrics),
            objective=self.last["objective"] if self.metrics else None,
            thetas=self.thetas,
            metrics=Raw(f"{len(self.metrics)} rows"),
        )


def _config_dict(cfg: DCPGConfig) -> dict:
    return {"kind": CONFIG_KIND, **dataclasses.asdict(cfg)}


def run_one(cfg: DCPGConfig) -> tuple[str, bool, float]:
    """Run ``cfg`` unless a finished run of it exists under ``cfg.out`` (resume an interrupted one)."""
    t0 = time.perf_counter()
    d = runs.find_run(cfg.out, _config_dict(cfg))
    if d is not None and (d / "final.npz").exists():
        return str(d), True, 0.0
    res = run_dcpg(resume=d) if d is not None else run_dcpg(cfg)
    return str(res.run_dir), False, time.perf_counter() - t0


def load_dcpg_run(run_dir: Path, cfg: DCPGConfig) -> DCPGRun:
    """A finished run from its folder."""
    folder = runs.RunFolder(run_dir)
    fin = folder.load_final()
    n = len(fin["thetas"])
    return DCPGRun(cfg, Path(run_dir), np.asarray(fin["thetas"]), folder.read_metrics(metric_fields(n)))


def run_dcpg_grid(name: str, configs: Sequence[DCPGConfig], ctx: Context) -> list[DCPGRun]:
    """Run every config (``ctx.workers`` processes), reusing finished runs; results in config order.

    ``ctx.max_iters`` caps every run's iterations. Prints ``[k/n] name: run -> objective`` lines.
    """
    if ctx.max_iters is not None:
        configs = [dataclasses.replace(c, iters=min(c.iters, ctx.max_iters)) for c in configs]
    configs = list(configs)
    n = len(configs)
    dirs: dict[int, str] = {}

    def report(k: int, j: int, d: str, reused: bool, secs: float) -> None:
        dirs[j] = d
        if ctx.progress:
            run = load_dcpg_run(Path(d), configs[j])
            last = run.last
            how = "reused" if reused else f"{secs:.1f} s"
            bad = diverged_at(run.metrics)
            end = "" if bad is None else f"diverged at {bad} (metrics not finite), "
            print(
                f"[{k}/{n}] {name}: {Path(d).name} -> {end}objective {fmt(last['objective'], 3)}, "
                f"consensus error {fmt(last['consensus_error'])} ({how})",
                flush=True,
            )

    map_runs(run_one, configs, ctx.workers, lambda k, j, result: report(k, j, *result))
    return [load_dcpg_run(Path(dirs[j]), configs[j]) for j in range(n)]
