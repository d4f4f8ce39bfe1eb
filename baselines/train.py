"""Training runs: typed config, metrics, atomic checkpoints, exact resume.

A run lives in ``runs/<env>__<algo>__<seed>__<time>/``:

* ``config.json`` -- the :class:`TrainConfig`;
* ``metrics.csv`` -- one row per evaluated iteration (exact Nash gap, potential, POA, values,
  L1 change), appended as the run goes;
* ``checkpoint.npz`` -- parameters, iteration, estimator RNG state and policy snapshots, written
  atomically (temp file + ``os.replace``) every ``checkpoint_every`` iterations;
* ``final.npz`` -- final policies and the snapshots; ``l1_accuracy.csv`` -- paper 001's
  L1-accuracy to the final policy at every evaluated iteration; ``metrics.png`` when matplotlib is
  installed.

``train(config, resume=run_dir)`` continues a killed run from its last checkpoint and ends with
exactly the result of an uninterrupted run (same parameters, same metrics).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pettingzoo

import mpg_envs
from baselines.algorithms import ALGORITHMS, Algorithm, make_algorithm
from baselines.estimators import Estimator, ExactEstimator
from mpg_envs import exact
from mpg_envs.model import TabularModel

__all__ = ["TrainConfig", "RunResult", "train", "make_estimator", "validate_config", "l1_accuracy"]

ESTIMATORS = ("exact", "sampled", "forced", "forced_visit_sum")
#: Stop rules on the L1 change d_t = L1(pi_t, pi_{t-1}) (see ``TrainConfig.stop_rule``).
STOP_RULES = ("l1", "fox2022-npg", "fox2022-pg")


@dataclass
class TrainConfig:
    """Everything that defines a training run (the CLI's ``train`` options)."""

    env: str = field(default="mpg/Congestion-v0", metadata={"help": "registered env id (mpg_envs.ENV_IDS)"})
    env_kwargs: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "env keyword arguments, e.g. n_agents=4 slip=0.1"}
    )
    algo: str = field(default="inpg", metadata={"help": f"algorithm: {', '.join(sorted(ALGORITHMS))}"})
    estimator: str = field(
        default="exact",
        metadata={
            "help": "exact (from the model); sampled (on-policy Monte Carlo from mu); forced or "
            "forced_visit_sum (paper 001's code: per-state rollouts, every action forced; mean-return "
            "or visit-sum values)"
        },
    )
    eta: float = field(default=0.1, metadata={"help": "step size eta > 0"})
    iters: int = field(default=1000, metadata={"help": "number of iterations"})
    seed: int = field(default=0, metadata={"help": "seed of the initial logits and of the sampler"})
    init: str = field(
        default="normal", metadata={"help": "initial logits: normal (N(0,1), paper 003) or uniform"}
    )
    log_barrier: float = field(
        default=0.0, metadata={"help": "log-barrier weight lambda >= 0 (paper 003 §3.2)"}
    )
    inner_steps: int = field(default=5, metadata={"help": "NPG-BR inner steps K"})
    horizon: int = field(default=20, metadata={"help": "sampled estimator: episode length T (paper 001: 20)"})
    batch: int = field(
        default=20,
        metadata={
            "help": "sampled: episodes per iteration (paper 001's text: 20); forced: samples per "
            "state and per forced action (paper 001's code: 10)"
        },
    )
    eval_every: int = field(default=1, metadata={"help": "compute exact metrics every k iterations"})
    checkpoint_every: int = field(default=50, metadata={"help": "write a checkpoint every k iterations"})
    stop_l1: float = field(
        default=0.0,
        metadata={"help": "stop early when the L1 change between consecutive policies < this (0: never)"},
    )
    stop_rule: str = field(
        default="l1",
        metadata={
            "help": "when the L1 change is checked: l1 (d_t at every t >= 1, final pi_t); fox2022-npg "
            "(paper 001's npg scripts: t >= 2, final pi_t); fox2022-pg (its projected-PG scripts: d_t "
            "checked one update behind, final pi_{t+1})"
        },
    )
    out: str = field(default="runs", metadata={"help": "directory that receives run folders"})


@dataclass
class RunResult:
    """What a finished run returns.

    Attributes:
        run_dir: The run folder.
        params: Final parameters (list of (S, |A_i|)).
        policies: Final policies.
        metrics: Rows of metrics.csv as dicts.
        snapshots: Policies at every evaluated iteration, shape (K, N, S, max |A_i|) float32.
        stopped: Whether the stop rule ended the run (False: it ran all ``iters``).
    """

    run_dir: Path
    params: list[np.ndarray]
    policies: list[np.ndarray]
    metrics: list[dict[str, float]]
    snapshots: np.ndarray
    stopped: bool = False


def validate_config(cfg: TrainConfig) -> None:
    """Fail before any work with a clear message naming the bad option."""
    if cfg.env not in mpg_envs.ENV_IDS:
        raise ValueError(f"unknown env {cfg.env!r}; registered: {sorted(mpg_envs.ENV_IDS)}")
    if cfg.algo not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {cfg.algo!r}; choose from {sorted(ALGORITHMS)}")
    if cfg.estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {cfg.estimator!r}; choose from {list(ESTIMATORS)}")
    if (
        isinstance(cfg.eta, bool)
        or not isinstance(cfg.eta, (int, float))
        or not np.isfinite(cfg.eta)
        or cfg.eta <= 0
    ):
        raise ValueError(f"eta must be a finite number > 0, got {cfg.eta!r}")
    for name in ("iters", "horizon", "batch", "eval_every", "checkpoint_every", "inner_steps"):
        v = getattr(cfg, name)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    for name in ("eta", "log_barrier", "stop_l1"):
        v = getattr(cfg, name)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or v < 0:
            raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
    if cfg.log_barrier > 0 and ALGORITHMS[cfg.algo].parameterization != "softmax":
        raise ValueError(
            f"log_barrier applies to softmax algorithms; {cfg.algo} uses direct parameters "
            f"(got log_barrier={cfg.log_barrier!r})"
        )
    if cfg.stop_rule not in STOP_RULES:
        raise ValueError(f"unknown stop_rule {cfg.stop_rule!r}; choose from {list(STOP_RULES)}")
    if cfg.init not in ("normal", "uniform"):
        raise ValueError(f"init must be 'normal' or 'uniform', got {cfg.init!r}")


def load_config(run_dir: str | Path) -> TrainConfig:
    """The :class:`TrainConfig` saved in a run folder.

    Raises:
        ValueError: If the folder or its config.json is missing or not a valid config.
    """
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise ValueError(f"resume: {str(run_dir)!r} is not a run folder (no config.json)")
    try:
        return TrainConfig(**json.loads(path.read_text()))
    except (ValueError, TypeError) as err:
        raise ValueError(f"resume: {str(path)!r} is not a valid run config ({err})") from None


def make_env(cfg: TrainConfig):
    """The config's env; unknown keyword arguments raise ValueError naming the allowed ones."""
    import importlib
    import inspect
    import typing

    module = importlib.import_module(mpg_envs.ENV_IDS[cfg.env])
    env_class = typing.get_type_hints(module.raw_env)["return"]
    allowed = [p for p in inspect.signature(env_class.__init__).parameters if p != "self"]
    unknown = sorted(set(cfg.env_kwargs) - set(allowed))
    if unknown:
        raise ValueError(f"unknown env keyword argument(s) {unknown} for {cfg.env}; allowed: {allowed}")
    try:
        return pettingzoo.make("parallel", cfg.env, **cfg.env_kwargs)
    except TypeError as err:
        raise ValueError(f"env_kwargs {cfg.env_kwargs!r} for {cfg.env}: {err}") from None


def make_estimator(cfg: TrainConfig, env, model: TabularModel, rng: np.random.Generator) -> Estimator:
    """The estimator the config asks for (the sampled one shares the env's dynamics)."""
    if cfg.estimator == "exact":
        return ExactEstimator(model)
    from baselines.sampler import ForcedActionEstimator, SampledEstimator

    dyn = env.unwrapped.dynamics
    if cfg.estimator == "sampled":
        return SampledEstimator(dyn, model.gamma, horizon=cfg.horizon, batch=cfg.batch, rng=rng)
    value = "mean" if cfg.estimator == "forced" else "visit_sum"
    return ForcedActionEstimator(
        dyn, model.gamma, horizon=cfg.horizon, samples=cfg.batch, rng=rng, value=value
    )


def _algorithm(cfg: TrainConfig) -> Algorithm:
    kw: dict[str, Any] = {"eta": cfg.eta}
    if ALGORITHMS[cfg.algo].parameterization == "softmax":
        kw["log_barrier"] = cfg.log_barrier
    if cfg.algo == "npg_br":
        kw["inner_steps"] = cfg.inner_steps
    return make_algorithm(cfg.algo, **kw)


def _pack(policies: list[np.ndarray], width: int) -> np.ndarray:
    """Policies -> (N, S, width) float32 (padded with zeros)."""
    out = np.zeros((len(policies), policies[0].shape[0], width), np.float32)
    for i, p in enumerate(policies):
        out[i, :, : p.shape[1]] = p
    return out


def l1_accuracy(snapshots: np.ndarray) -> np.ndarray:
    """Paper 001's L1-accuracy of every snapshot to the last one: (1/N) sum_i |pi_i - pi_i^final|.

    Args:
        snapshots: Policies, shape (K, N, S, max |A_i|) (zero-padded).

    Returns:
        Shape (K,).
    """
    return np.abs(snapshots - snapshots[-1]).sum(axis=(2, 3)).mean(axis=1)


def _save_atomic(path: Path, **arrays: Any) -> None:
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def _run_dir(cfg: TrainConfig) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    name = f"{cfg.env.replace('/', '-')}__{cfg.algo}__{cfg.seed}__{stamp}"
    path = Path(cfg.out) / name
    k = 1
    while path.exists():
        path = Path(cfg.out) / f"{name}-{k}"
        k += 1
    return path


METRIC_FIELDS = ["iteration", "nash_gap", "nash_gap_worst", "potential", "poa", "l1_change", "wall_time"]


def train(
    cfg: TrainConfig,
    *,
    resume: str | Path | None = None,
    progress: bool = True,
    stop_after: int | None = None,
) -> RunResult:
    """Run (or resume) a training run.

    Args:
        cfg: The configuration (ignored when resuming: the run's own config.json is used).
        resume: A run folder to continue from its last checkpoint.
        progress: Show a tqdm progress bar (if tqdm is installed).
        stop_after: Stop (without finishing) after this many iterations of this call -- used to
            simulate a kill in tests.

    Returns:
        The :class:`RunResult`.
    """
    if resume is not None:
        run_dir = Path(resume)
        cfg = load_config(run_dir)
        if (run_dir / "final.npz").exists():
            raise ValueError(f"resume: the run in {str(run_dir)!r} is finished (final.npz exists)")
    validate_config(cfg)
    env = make_env(cfg)
    model = env.unwrapped.model()
    algo = _algorithm(cfg)
    rng = np.random.default_rng(cfg.seed)
    params = algo.init_params(model.n_states, model.action_sizes, rng, cfg.init)
    estimator = make_estimator(cfg, env, model, np.random.default_rng([cfg.seed, 1]))
    width = max(model.action_sizes)
    opt = exact.social_optimum(model)
    start, snapshots, rows = 0, [], []
    prev_params = params
    fresh = resume is None or not (run_dir / "checkpoint.npz").exists()  # killed before a checkpoint
    if resume is None:
        run_dir = _run_dir(cfg)
        try:
            run_dir.mkdir(parents=True)
        except OSError as err:
            raise ValueError(
                f"out {cfg.out!r}: cannot create the run folder {str(run_dir)!r} ({err.strerror})"
            ) from None
        (run_dir / "config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=2))
    if fresh:
        with open(run_dir / "metrics.csv", "w", newline="") as f:
            csv.writer(f).writerow(METRIC_FIELDS + [f"value_{i}" for i in range(model.n_agents)])
    else:
        ck = np.load(run_dir / "checkpoint.npz", allow_pickle=False)
        start = int(ck["iteration"])
        params = [ck[f"param_{i}"] for i in range(model.n_agents)]
        snapshots = list(ck["snapshots"])
        if "rng_state" in ck.files and hasattr(estimator, "load_state_dict"):
            estimator.load_state_dict(json.loads(str(ck["rng_state"])))
        prev_params = [ck[f"prev_{i}"] for i in range(model.n_agents)]
        with open(run_dir / "metrics.csv", newline="") as f:
            rows = [
                {k: int(v) if k == "iteration" else float(v) for k, v in r.items()}
                for r in csv.DictReader(f)
                if int(r["iteration"]) < start
            ]
        with open(run_dir / "metrics.csv", "w", newline="") as f:  # drop rows after the checkpoint
            w = csv.DictWriter(f, fieldnames=METRIC_FIELDS + [f"value_{i}" for i in range(model.n_agents)])
            w.writeheader()
            w.writerows(rows)
    t0 = time.perf_counter()
    prev = algo.policies(prev_params if resume is not None else params)
    bar = _progress(range(start, cfg.iters), progress, initial=start, total=cfg.iters, desc=run_dir.name)
    done, stopped = start, False
    tol, rule = cfg.stop_l1, cfg.stop_rule
    first_check = 2 if rule == "fox2022-npg" else 1
    for it in bar:
        pol = algo.policies(params)
        l1 = exact.l1_distance(pol, prev) if it > 0 else float("nan")
        if it % cfg.eval_every == 0:
            rows.append(_metrics(model, pol, opt, it, l1, time.perf_counter() - t0))
            snapshots.append(_pack(pol, width))
            _append_row(run_dir, rows[-1])
            if hasattr(bar, "set_postfix"):
                bar.set_postfix(nash_gap=f"{rows[-1]['nash_gap']:.2e}")
        if tol > 0 and rule != "fox2022-pg" and it >= first_check and l1 < tol:
            done, stopped = it, True  # final policy pi_it
            break
        prev, prev_params = pol, params
        params, _ = algo.update(params, estimator)
        done = it + 1
        if tol > 0 and rule == "fox2022-pg":
            # the authors' projected PG compares pi_t with pi_{t-1} after computing pi_{t+1} (at
            # t = 0: pi_0 with pi_1) and returns pi_{t+1}
            d = l1 if it >= 1 else exact.l1_distance(algo.policies(params), pol)
            stopped = bool(d < tol)
        if done % cfg.checkpoint_every == 0 or stopped:
            _checkpoint(run_dir, params, prev_params, done, snapshots, estimator)
        if stopped:
            prev = pol
            break
        if stop_after is not None and done - start >= stop_after:
            return RunResult(run_dir, params, algo.policies(params), rows, np.stack(snapshots))
    pol = algo.policies(params)
    if not rows or int(rows[-1]["iteration"]) != done:
        rows.append(_metrics(model, pol, opt, done, exact.l1_distance(pol, prev), time.perf_counter() - t0))
        snapshots.append(_pack(pol, width))
        _append_row(run_dir, rows[-1])
    snaps = np.stack(snapshots)
    _checkpoint(run_dir, params, prev_params, done, snapshots, estimator)
    _save_atomic(
        run_dir / "final.npz",
        snapshots=snaps,
        stopped=np.array(stopped),
        **{f"policy_{i}": p for i, p in enumerate(pol)},
    )
    l1 = l1_accuracy(snaps)
    with open(run_dir / "l1_accuracy.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["iteration", "l1_accuracy"])
        w.writerows([int(r["iteration"]), f"{v:.10g}"] for r, v in zip(rows, l1))
    _plot_run(run_dir, rows, l1)
    return RunResult(run_dir, params, pol, rows, snaps, stopped)


def _progress(it, enabled: bool, **kw):
    if not enabled:
        return it
    try:
        from tqdm import tqdm
    except ImportError:
        return it
    return tqdm(it, **kw)


def _metrics(model, pol, opt, it: int, l1: float, wall: float) -> dict[str, float]:
    gap = exact.nash_gap(model, pol)
    V = exact.evaluate(model, pol) @ model.mu
    row: dict[str, float] = {
        "iteration": it,
        "nash_gap": gap.gap,
        "nash_gap_worst": gap.worst,
        "potential": float(exact.potential_value(model, pol) @ model.mu)
        if model.phi is not None
        else float("nan"),
        "poa": float(V.sum() / opt.welfare) if opt.welfare > 0 else float("nan"),
        "l1_change": l1,
        "wall_time": wall,
    }
    row.update({f"value_{i}": float(v) for i, v in enumerate(V)})
    return row


def _append_row(run_dir: Path, row: dict[str, float]) -> None:
    with open(run_dir / "metrics.csv", "a", newline="") as f:
        csv.writer(f).writerow([row[k] for k in row])


def _checkpoint(run_dir: Path, params, prev_params, iteration: int, snapshots, estimator) -> None:
    extra = {}
    if hasattr(estimator, "state_dict"):
        extra["rng_state"] = np.array(json.dumps(estimator.state_dict()))
    _save_atomic(
        run_dir / "checkpoint.npz",
        iteration=np.array(iteration),
        snapshots=np.stack(snapshots) if snapshots else np.zeros((0,)),
        **{f"param_{i}": p for i, p in enumerate(params)},
        **{f"prev_{i}": p for i, p in enumerate(prev_params)},
        **extra,
    )


def _plot_run(run_dir: Path, rows: list[dict], l1: np.ndarray) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    its = [int(float(r["iteration"])) for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    axes[0].semilogy(its, np.maximum(l1, 1e-14))
    axes[0].set(xlabel="iteration", ylabel="L1-accuracy to final policy")
    axes[1].semilogy(its, np.maximum([float(r["nash_gap"]) for r in rows], 1e-14))
    axes[1].set(xlabel="iteration", ylabel="Nash gap (exact)")
    axes[2].plot(its, [float(r["poa"]) for r in rows])
    axes[2].set(xlabel="iteration", ylabel="price of anarchy")
    fig.suptitle(run_dir.name, fontsize=9)
    fig.tight_layout()
    fig.savefig(run_dir / "metrics.png", dpi=110)
    plt.close(fig)
