"""A grid of DCPG runs for the paper-004 reproductions: parallel processes, finished runs reused,
interrupted ones resumed (the DCPG twin of :func:`baselines.experiments.common.run_grid`).

A grid may mix GridWorld runs (:class:`~baselines.consensus.dcpg.DCPGConfig`, :func:`run_dcpg`)
and runs over any multi-task env (:class:`~baselines.consensus.envtasks.EnvDCPGConfig`,
:func:`~baselines.consensus.envtasks.run_dcpg_env`; needs torch): each config's type says which
trainer runs it, which ``kind`` its config.json records and which metrics its folder holds."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    """A finished DCPG run: its config, every agent's final parameters, its metrics rows and (an
    env run) final.npz's Monte Carlo arrays (``distance``, ``return``, ``terminated``, each of
    shape (N + 1, N, E): agent 0 .. N-1's own policy, then the average, in every task)."""

    config: Any  # DCPGConfig or EnvDCPGConfig
    run_dir: Path
    thetas: np.ndarray
    metrics: list[dict[str, float]]
    final: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

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


def _is_env(cfg: Any) -> bool:
    """Whether ``cfg`` is an env run's config (else a GridWorld DCPGConfig); anything else is refused."""
    if isinstance(cfg, DCPGConfig):
        return False
    from baselines.consensus.envtasks import EnvDCPGConfig

    if isinstance(cfg, EnvDCPGConfig):
        return True
    raise TypeError(f"a DCPG grid takes DCPGConfig or EnvDCPGConfig, got {type(cfg).__name__}")


def _config_dict(cfg: Any) -> dict:
    """What the run's config.json holds (its ``kind`` and every field), as ``runs.find_run`` matches it."""
    if _is_env(cfg):
        from baselines.consensus.envtasks import CONFIG_KIND as ENV_KIND

        return {"kind": ENV_KIND, **dataclasses.asdict(cfg)}
    return {"kind": CONFIG_KIND, **dataclasses.asdict(cfg)}


def run_one(cfg: Any) -> tuple[str, bool, float]:
    """Run ``cfg`` (a DCPGConfig or an EnvDCPGConfig) unless a finished run of it exists under
    ``cfg.out`` (resume an interrupted one)."""
    t0 = time.perf_counter()
    env = _is_env(cfg)
    d = runs.find_run(cfg.out, _config_dict(cfg))
    if d is not None and (d / "final.npz").exists():
        return str(d), True, 0.0
    if env:
        from baselines.consensus.envtasks import run_dcpg_env as train
    else:
        train = run_dcpg
    res = train(resume=d) if d is not None else train(cfg)
    return str(res.run_dir), False, time.perf_counter() - t0


def load_dcpg_run(run_dir: Path, cfg: Any) -> DCPGRun:
    """A finished run (of a DCPGConfig or an EnvDCPGConfig) from its folder."""
    folder = runs.RunFolder(run_dir)
    if not _is_env(cfg):
        fin = folder.load_final(("thetas",))
        n = len(fin["thetas"])
        return DCPGRun(cfg, Path(run_dir), np.asarray(fin["thetas"]), folder.read_metrics(metric_fields(n)))
    from baselines.consensus.envtasks import env_has_exact_model, env_metric_fields

    keys = ("thetas", "distance", "return", "terminated")
    fin = folder.load_final(keys)
    n = len(fin["thetas"])
    fields = env_metric_fields(n, bool(cfg.communicate), env_has_exact_model(cfg.env))
    final = {k: np.asarray(fin[k]) for k in keys[1:]}
    return DCPGRun(cfg, Path(run_dir), np.asarray(fin["thetas"]), folder.read_metrics(fields), final)


def run_dcpg_grid(name: str, configs: Sequence[Any], ctx: Context) -> list[DCPGRun]:
    """Run every config (``ctx.workers`` processes, or Ray tasks when ``ctx.executor`` is ``"ray"``),
    reusing finished runs; results in config order.

    ``configs`` may mix :class:`~baselines.consensus.dcpg.DCPGConfig` and
    :class:`~baselines.consensus.envtasks.EnvDCPGConfig` (each runs with its own trainer).

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

    map_runs(run_one, configs, ctx.workers, lambda k, j, result: report(k, j, *result), ctx.executor)
    return [load_dcpg_run(Path(dirs[j]), configs[j]) for j in range(n)]
