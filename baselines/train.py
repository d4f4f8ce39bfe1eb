"""Training runs: a typed config, the loop, and exact resume (storage in :mod:`baselines.runs`).

:func:`train` builds the env, the algorithm (its own typed options, ``algo_kwargs``), the policy it
trains, an estimator (``estimator_kwargs``) and an evaluator of exact metrics, then iterates:

1. tabulate the policy (its table on every model state) and compute the L1 change;
2. at the scheduled iterations (:func:`~baselines.evaluation.evaluation_iterations`), log the
   exact metrics and keep the table as a snapshot;
3. stop on the stop rule or at ``iters``, else update the policy in place.

Every ``checkpoint_every`` iterations the state at the start of the iteration is saved; a killed
run resumed from its folder ends bit-identical to an uninterrupted one, from any kill point
(also during a checkpoint or the final write, or before the first checkpoint). ``resume`` with
``iters`` extends a finished run.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pettingzoo

import mpg_envs
from baselines.algorithms import ALGORITHMS, Algorithm, algorithm_class, make_algorithm
from baselines.estimators import Estimator, ExactEstimator, TaskwiseExactEstimator
from baselines.evaluation import (
    Evaluator,
    JointEvaluator,
    TaskwiseEvaluator,
    evaluation_count,
    evaluation_iterations,
)
from baselines.policies import Policy
from baselines.runs import (
    TMP_SUFFIX,
    TRAIN_FINAL,
    DamagedRunError,
    RunFolder,
    atomic_write_bytes,
    changed_entries,
    config_record,
    pack_tables,
    run_name,
)
from mpg_envs import _validate as V
from mpg_envs import exact
from mpg_envs._repr import Raw, concise_repr
from mpg_envs.model import ModelTooLargeError

__all__ = [
    "TrainConfig",
    "RunResult",
    "train",
    "validate_config",
    "make_env",
    "make_estimator",
    "load_config",
    "config_dict",
    "l1_accuracy",
    "ESTIMATORS",
    "STOP_RULES",
    "METRIC_FIELDS",
]

#: Estimators and their options: name -> {option: (default, help)}.
ESTIMATORS: dict[str, dict[str, tuple[Any, str]]] = {
    "exact": {},
    "sampled": {
        "horizon": (20, "episode length T (paper 001: 20)"),
        "batch": (20, "episodes per iteration (paper 001's text: 20)"),
        "tail": (0, "extra steps that only complete the returns (0: truncated, as paper 001)"),
    },
    "forced": {
        "horizon": (20, "episode length T (paper 001's code: 20)"),
        "samples": (10, "episodes per state and samples per forced action (paper 001's code: 10)"),
    },
    "forced_visit_sum": {
        "horizon": (20, "episode length T (paper 001's code: 20)"),
        "samples": (10, "episodes per state and samples per forced action (paper 001's code: 10)"),
        "layers": (2, "episode lengths T, T-1, ... of the visit-sum value (paper 001's code: 2)"),
    },
}
#: Stop rules on the L1 change d_t = L1(pi_t, pi_{t-1}) (see ``TrainConfig.stop_rule``).
STOP_RULES = ("l1", "fox2022-npg", "fox2022-pg")
METRIC_FIELDS = ["iteration", "nash_gap", "nash_gap_worst", "potential", "poa", "l1_change", "wall_time"]
#: Largest S * N * max|A_i| whose tables are kept as snapshots (L1-accuracy curves).
MAX_SNAPSHOT_ENTRIES = 1 << 22
#: Largest ``iters`` (a run of 10^12 iterations would take years; larger counts overflow the int64
#: iteration counters of the checkpoint).
MAX_ITERS = 10**12
CONFIG_VERSION = 2


@dataclass
class TrainConfig:
    """Everything that defines a training run (the CLI's ``train`` options)."""

    env: str = field(default="mpg/Congestion-v0", metadata={"help": "registered env id (mpg_envs.ENV_IDS)"})
    env_kwargs: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "env keyword arguments, e.g. n_agents=4 slip=0.1"}
    )
    algo: str = field(default="inpg", metadata={"help": f"algorithm: {', '.join(sorted(ALGORITHMS))}"})
    algo_kwargs: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "the algorithm's own options (its dataclass fields)"}
    )
    estimator: str = field(
        default="exact",
        metadata={
            "help": "exact (from the model); sampled (on-policy Monte Carlo from mu); forced or "
            "forced_visit_sum (paper 001's code: per-state rollouts, every action forced; mean-return "
            "or visit-sum values)"
        },
    )
    estimator_kwargs: dict[str, Any] = field(
        default_factory=dict, metadata={"help": "the estimator's options"}
    )
    obs: str = field(
        default="",
        metadata={
            "help": "observation mode of the policy: state, own, vector, onehot ('' = the algorithm's)"
        },
    )
    iters: int = field(default=1000, metadata={"help": "number of iterations"})
    seed: int = field(default=0, metadata={"help": "seed of the initial parameters and of the sampler"})
    init: str = field(
        default="normal",
        metadata={
            "help": "initial parameters: normal (N(0,1), paper 003), uniform, or torch (networks only: "
            "PyTorch's default for nn.Linear)"
        },
    )
    eval_every: int = field(default=10, metadata={"help": "compute exact metrics every k iterations"})
    eval_log: bool = field(
        default=True, metadata={"help": "also at 1, 2, 3, 5, 7, 10, 15, 20, 30, ... (and always the last)"}
    )
    checkpoint_every: int = field(default=50, metadata={"help": "write a checkpoint every k iterations"})
    stop_l1: float = field(
        default=0.0,
        metadata={
            "help": "stop early when the L1 change between consecutive policies < this (0: never; "
            "the fox2022 stop rules need a threshold > 0)"
        },
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
        policy: The trained :class:`~baselines.policies.Policy` (None when loaded from disk).
        policies: Final tables, list of N arrays (S, |A_i|).
        metrics: Rows of metrics.csv as dicts.
        snapshots: Tables at every evaluated iteration, shape (K, N, S, max |A_i|) float32
            (empty when the tables are too large to keep).
        stopped: Whether the stop rule ended the run (False: it ran all ``iters``).
        stop_reason: Why it stopped, e.g. ``"L1 change 8.1e-06 < 1e-05 (rule l1)"`` ("" if it ran
            all ``iters``).
    """

    run_dir: Path
    policy: Policy | None
    policies: list[np.ndarray]
    metrics: list[dict[str, float]]
    snapshots: np.ndarray
    stopped: bool = False
    stop_reason: str = ""

    @property
    def iterations(self) -> int:
        """The last evaluated iteration (the run's end once it finished)."""
        return int(self.metrics[-1]["iteration"]) if self.metrics else 0

    def describe_end(self) -> str:
        """How the run ended, for the console: ``"stopped at iteration k: <reason>"`` or
        ``"ran k iterations"``."""
        if self.stopped:
            return f"stopped at iteration {self.iterations}: {self.stop_reason or 'stop rule'}"
        return f"ran {self.iterations} iterations"

    def __repr__(self) -> str:
        return concise_repr(
            self,
            run_dir=str(self.run_dir),
            end=self.describe_end(),
            nash_gap=self.metrics[-1]["nash_gap"] if self.metrics else None,
            policies=self.policies,
            snapshots=self.snapshots,
            metrics=Raw(f"{len(self.metrics)} rows"),
        )


def l1_accuracy(snapshots: np.ndarray) -> np.ndarray:
    """Paper 001's L1-accuracy of every snapshot to the last one: (1/N) sum_i |pi_i - pi_i^final|.

    Args:
        snapshots: Policies, shape (K, N, S, max |A_i|) (zero-padded).

    Returns:
        Shape (K,).
    """
    return np.abs(snapshots - snapshots[-1]).sum(axis=(2, 3)).mean(axis=1)


# ------------------------------------------------------------------------------------ configuration
def _is_int(v: Any, minimum: int) -> bool:
    return not isinstance(v, bool) and isinstance(v, (int, np.integer)) and v >= minimum


def validate_config(cfg: TrainConfig) -> None:
    """Fail before any work with a clear message naming the bad option and value."""
    mpg_envs.check_model_env(cfg.env)
    for name in ("env_kwargs", "algo_kwargs", "estimator_kwargs"):
        if not isinstance(getattr(cfg, name), dict):
            raise ValueError(f"{name} must be a dict, got {getattr(cfg, name)!r}")
    make_algorithm(cfg.algo, **cfg.algo_kwargs)  # unknown algorithm, unknown or bad options
    if cfg.estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {cfg.estimator!r}; choose from {list(ESTIMATORS)}")
    options = ESTIMATORS[cfg.estimator]
    unknown = sorted(set(cfg.estimator_kwargs) - set(options))
    if unknown:
        raise ValueError(
            f"estimator {cfg.estimator} has no option(s) {unknown}; its options: {list(options)}"
        )
    for k, v in cfg.estimator_kwargs.items():
        if not _is_int(v, 0 if k == "tail" else 1):
            raise ValueError(f"{k} must be an integer >= {0 if k == 'tail' else 1}, got {v!r}")
    for name in ("iters", "eval_every", "checkpoint_every"):
        if not _is_int(getattr(cfg, name), 1):
            raise ValueError(f"{name} must be a positive integer, got {getattr(cfg, name)!r}")
    if cfg.iters > MAX_ITERS:
        raise ValueError(f"iters must be a positive integer of at most {MAX_ITERS:,}, got {cfg.iters!r}")
    if not _is_int(cfg.seed, 0):
        raise ValueError(f"seed must be an integer >= 0, got {cfg.seed!r}")
    if not isinstance(cfg.eval_log, bool):
        raise ValueError(f"eval_log must be true or false, got {cfg.eval_log!r}")
    v = cfg.stop_l1
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not np.isfinite(v) or v < 0:
        raise ValueError(f"stop_l1 must be a finite number >= 0, got {v!r}")
    if cfg.stop_rule not in STOP_RULES:
        raise ValueError(f"unknown stop_rule {cfg.stop_rule!r}; choose from {list(STOP_RULES)}")
    if cfg.stop_rule != "l1" and cfg.stop_l1 == 0:
        # a rule without a threshold never fires: refused rather than given a default, so that
        # the threshold (1e-5 in the authors' NPG scripts, 1e-15 in their PG ones) is always chosen
        raise ValueError(
            f"stop_rule {cfg.stop_rule!r} needs a threshold: stop_l1 must be > 0 with it (e.g. 1e-5), "
            "got 0 (the run would never stop)"
        )
    if cfg.init not in ("normal", "uniform", "torch"):
        raise ValueError(f"init must be 'normal', 'uniform' or 'torch', got {cfg.init!r}")
    if cfg.obs not in ("", "state", "own", "vector", "onehot"):
        raise ValueError(
            f"obs must be one of state, own, vector, onehot (or '' for the default), got {cfg.obs!r}"
        )
    if not isinstance(cfg.out, str) or not cfg.out.strip():
        raise ValueError(f"out must be a folder path (a non-empty string), got {cfg.out!r}")
    needs = getattr(algorithm_class(cfg.algo), "estimators", None)
    if needs is not None and cfg.estimator not in needs:
        raise ValueError(
            f"{cfg.algo} needs the estimator {' or '.join(needs)}, got estimator {cfg.estimator!r}"
        )
    if cfg.stop_l1 > 0 and not getattr(algorithm_class(cfg.algo), "l1_stop", True):
        raise ValueError(
            f"stop_l1 is not available with {cfg.algo}: the L1 change of its marginal policies can be 0 "
            "while its soft Q still moves, so it is no convergence test; run a fixed number of iterations "
            f"and read the soft_residual metric, got stop_l1={cfg.stop_l1!r}"
        )
    try:  # everything config.json records must be JSON (a numpy scalar would fail after the folder exists)
        json.dumps(config_dict(cfg))
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"the config cannot be recorded in config.json ({err}); pass plain Python numbers, strings and "
            "lists in env_kwargs, algo_kwargs and estimator_kwargs"
        ) from None


def load_config(run_dir: str | Path) -> TrainConfig:
    """The :class:`TrainConfig` saved in a run folder.

    Raises:
        ValueError: If the folder or its config.json is missing, damaged or not a valid config.
    """
    saved = RunFolder(run_dir).read_config()
    saved = {k: v for k, v in saved.items() if k != "version"}
    path = Path(run_dir) / "config.json"
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(saved) - known)
    if unknown:
        raise DamagedRunError(
            f"{path}: not a train run's config (entries {V.show(unknown)} are not train options; a dcpg "
            "or sb3 run resumes with its own command); start a new run"
        )
    missing = [k for k in ("env", "algo", "estimator", "iters", "seed") if k not in saved]
    if missing:
        raise DamagedRunError(f"{path}: no {missing} entries; restore it, or start a new run")
    try:
        return TrainConfig(**saved)
    except TypeError as err:
        raise DamagedRunError(
            f"{Path(run_dir) / 'config.json'}: not a config of this version of baselines ({err}); "
            "start a new run"
        ) from None


def config_dict(cfg: TrainConfig) -> dict[str, Any]:
    """What config.json holds (with the format version)."""
    return {"version": CONFIG_VERSION, **dataclasses.asdict(cfg)}


def make_env(cfg: TrainConfig):
    """The config's env; unknown keyword arguments raise ValueError naming the allowed ones."""
    mpg_envs.check_env_kwargs(cfg.env, cfg.env_kwargs)
    try:
        return pettingzoo.make("parallel", cfg.env, **cfg.env_kwargs)
    except TypeError as err:
        raise ValueError(f"env_kwargs {cfg.env_kwargs!r} for {cfg.env}: {err}") from None


def make_estimator(cfg: TrainConfig, env, model, rng: np.random.Generator, task_models=None) -> Estimator:
    """The estimator the config asks for (sampled ones share the env's dynamics)."""
    opts = {k: v for k, (v, _) in ESTIMATORS[cfg.estimator].items()} | cfg.estimator_kwargs
    if cfg.estimator == "exact":
        return ExactEstimator(model) if model is not None else TaskwiseExactEstimator(task_models)
    if model is None:
        raise ValueError(
            f"estimator {cfg.estimator} needs the joint model; this game trains on per-task models"
        )
    from baselines.sampler import ForcedActionEstimator, SampledEstimator

    dyn = env.unwrapped.dynamics
    if cfg.estimator == "sampled":
        return SampledEstimator(dyn, model.gamma, rng=rng, **opts)
    value = "mean" if cfg.estimator == "forced" else "visit_sum"
    return ForcedActionEstimator(dyn, model.gamma, rng=rng, value=value, **opts)


@dataclass
class _Setup:
    env: Any
    algorithm: Algorithm
    policy: Policy
    estimator: Estimator
    evaluator: Evaluator
    tabulate: Callable[[], list[np.ndarray]]
    action_sizes: tuple[int, ...]
    snapshots: bool
    n_states: int  # the largest exact model's states (one BLAS thread per run below 1,025)


def _setup(cfg: TrainConfig) -> _Setup:
    env = make_env(cfg)
    raw = env.unwrapped
    dyn = raw.dynamics
    algorithm = make_algorithm(cfg.algo, **cfg.algo_kwargs)
    model = task_models = None
    try:
        model = raw.model()
    except ModelTooLargeError:
        if not hasattr(raw, "task_models"):
            raise
        task_models = raw.task_models()  # independent tasks: train on their own models
    obs_mode = cfg.obs or ("own" if model is None else getattr(algorithm, "default_obs", "state"))
    if model is None and obs_mode != "own":
        raise ValueError(
            f"{cfg.env} trains on per-task models: policies must read obs='own', got {obs_mode!r}"
        )
    if algorithm.policy_kind != "neural" and model is not None and obs_mode != "state":
        raise ValueError(
            f"{cfg.algo} on the joint model needs obs='state' (tables over model states), got {obs_mode!r}"
        )
    n_rows = model.n_states if model is not None else task_models[0].n_states
    sizes = tuple(dyn.action_sizes)
    entries = n_rows * len(sizes) * max(sizes)
    keep_snapshots = entries <= MAX_SNAPSHOT_ENTRIES
    _check_run_memory(cfg, entries if keep_snapshots else 0, len(sizes))
    policy = algorithm.make_policy(dyn, n_rows, np.random.default_rng(cfg.seed), cfg.init, obs_mode)
    estimator = make_estimator(cfg, env, model, np.random.default_rng([cfg.seed, 1]), task_models)
    algorithm.check(policy, estimator)  # e.g. sampled episodes of a network: their size
    evaluator = JointEvaluator(model) if model is not None else TaskwiseEvaluator(task_models)
    if model is None or algorithm.policy_kind != "neural":
        tabulate = policy.tables if model is None else (lambda: policy.table(dyn))
    else:
        from baselines.policies import observe_all

        observations = observe_all(dyn, obs_mode)
        tabulate = lambda: policy.table(dyn, observations)  # noqa: E731
    n_states = model.n_states if model is not None else max(m.n_states for m in task_models)
    return _Setup(env, algorithm, policy, estimator, evaluator, tabulate, sizes, keep_snapshots, n_states)


def _check_run_memory(cfg: TrainConfig, snapshot_entries: int, n_agents: int) -> None:
    """Refuse a run whose evaluated iterations would not fit in memory: every evaluation keeps a
    metrics row and a snapshot of the tables (float32, ``snapshot_entries`` entries) until the
    end, where the snapshots are stacked and written (about three copies at the peak).

    Raises:
        TooLargeError: Naming the number of evaluations and what to change.
    """
    n_eval = evaluation_count(cfg.iters, cfg.eval_every, cfg.eval_log)
    per_eval = 3 * 4 * snapshot_entries + 200 * (len(METRIC_FIELDS) + n_agents) + 3 * 8
    V.check_bytes(
        f"the {n_eval:,} evaluations of iters={cfg.iters:,} with eval_every={cfg.eval_every:,} "
        f"(a metrics row and a snapshot of {snapshot_entries:,} table entries each)",
        n_eval * per_eval,
        advice="raise eval_every (and turn eval_log off), or train fewer iterations",
    )


# ------------------------------------------------------------------------------------ the loop
def _run_name(cfg: TrainConfig) -> str:
    layout = cfg.env_kwargs.get("layout") if cfg.env == "mpg/MultiTaskGridWorld-v0" else None
    return run_name(cfg.env, cfg.algo, cfg.seed, layout)


def train(
    cfg: TrainConfig,
    *,
    resume: str | Path | None = None,
    iters: int | None = None,
    progress: bool = True,
    stop_after: int | None = None,
    plot: bool = True,
) -> RunResult:
    """Run (or resume, or extend) a training run.

    Args:
        cfg: The configuration (ignored when resuming: the run's own config.json is used).
        resume: A run folder to continue from its last checkpoint.
        iters: With ``resume``: extend the run to this many iterations (>= its current ``iters``);
            the only option a resumed run accepts.
        progress: Show a tqdm progress bar (if tqdm is installed).
        stop_after: Return (without finishing, like a kill) after this many updates of this call --
            used to test resuming.
        plot: Write ``metrics.png`` at the end (needs matplotlib).

    Returns:
        The :class:`RunResult`.

    Raises:
        ValueError: Bad config, bad ``iters``, a finished run resumed without extension, or a
            damaged run folder (:class:`~baselines.runs.DamagedRunError`, naming the file).
    """
    if resume is not None:
        if not isinstance(resume, (str, os.PathLike)):
            raise ValueError(f"resume must be a run folder's path, got {V.show(resume)}")
        folder = RunFolder(resume)
        folder.read_config()  # not a run folder: refused before anything else
        with folder.lock():  # one writer per run folder
            cfg, setup, fields = _prepare_resume(folder, iters)
            return _guarded(_loop, cfg, setup, folder, fields, progress, stop_after, plot)
    if iters is not None:
        raise ValueError(f"iters extends a resumed run; pass it with resume, got iters={iters!r}")
    validate_config(cfg)
    setup = _setup(cfg)  # every refusal happens before the run folder exists
    fields = _fields(setup)
    folder = RunFolder.create(cfg.out, _run_name(cfg))
    with folder.lock():  # taken before config.json exists, so no resume can find the folder first
        folder.write_config(config_dict(cfg))
        return _guarded(_loop, cfg, setup, folder, fields, progress, stop_after, plot)


def _fields(setup: _Setup) -> list[str]:
    """The metrics CSV columns: the common ones, every agent's value, the algorithm's own."""
    values = [f"value_{i}" for i in range(len(setup.action_sizes))]
    return METRIC_FIELDS + values + list(setup.algorithm.metric_fields)


def _prepare_resume(folder: RunFolder, iters: int | None) -> tuple[TrainConfig, _Setup, list[str]]:
    """The config (extended to ``iters``), the setup and the metric fields of a run to resume,
    checked before anything is written."""
    cfg = load_config(folder.path)
    final = folder.load_final(TRAIN_FINAL) if folder.finished else None
    if iters is not None:
        if not _is_int(iters, cfg.iters) or iters > MAX_ITERS:
            raise ValueError(
                f"iters must be an integer >= the run's iters ({cfg.iters}) and <= {MAX_ITERS:,} to "
                f"extend it, got {iters!r}"
            )
        if final is not None and bool(final.get("stopped", False)):
            raise ValueError(
                f"resume: the run in {str(folder.path)!r} ended by its stop rule; it cannot be extended"
            )
    elif final is not None:
        raise ValueError(
            f"resume: the run in {str(folder.path)!r} is finished (final.npz exists); pass iters to extend it"
        )
    try:
        validate_config(cfg)
    except ValueError as err:
        raise DamagedRunError(
            f"{folder.config_path}: not a valid config ({err}); restore it, or start a new run"
        ) from None
    extended = dataclasses.replace(cfg, iters=int(iters)) if iters is not None else cfg
    setup = _setup(extended)
    fields = _fields(setup)
    if iters is not None:
        folder.write_config(config_dict(extended))  # the extension is recorded before anything else
        folder.final_path.unlink(missing_ok=True)
    folder.clean_temporaries()
    return extended, setup, fields


def _guarded(
    loop: Callable[..., RunResult], cfg: TrainConfig, setup: _Setup, folder: RunFolder, *args: Any
) -> RunResult:
    """Run the loop; a file the run folder cannot take (a folder in place of a file, a full disk)
    ends with a ValueError naming it."""
    try:
        with exact.blas_scope(setup.n_states):  # once per run, not in every exact call
            return loop(cfg, setup, folder, *args)
    except OSError as err:
        name = str(err.filename or folder.path).removesuffix(TMP_SUFFIX)
        raise ValueError(
            f"{name}: cannot write the run folder ({err.strerror or err}); {folder.path} keeps what was "
            "written before (fix the cause, then resume it)"
        ) from None


def _loop(cfg, setup: _Setup, folder: RunFolder, fields, progress, stop_after, plot) -> RunResult:
    alg, policy, estimator, evaluator = setup.algorithm, setup.policy, setup.estimator, setup.evaluator
    start, rows, snaps, prev = 0, [], [], None
    stop_next, reason = False, ""  # fox2022-pg: the check one update behind has fired, and why
    ck = folder.load_checkpoint()
    if ck is not None:
        start, stop_next, reason, prev = _restore(ck, cfg, setup, folder)
        rows = folder.read_metrics(fields, before=start)
        snaps = folder.load_snapshots(int(ck["n_snapshots"])) if setup.snapshots else []
    else:
        folder.load_snapshots(0)  # chunks a kill left before the first checkpoint
    folder.start_metrics(fields, rows)
    flushed = len(snaps)
    eval_at = _Schedule(evaluation_iterations(cfg.iters, cfg.eval_every, cfg.eval_log))
    tol, rule = cfg.stop_l1, cfg.stop_rule
    first_check = 2 if rule == "fox2022-npg" else 1

    def checkpoint(it: int, n_rows: int, n_snaps: int, prev_tables) -> None:
        nonlocal flushed
        if not _finite_policy(policy):  # never checkpoint a diverged policy
            raise _diverged(it, folder)
        if setup.snapshots:
            folder.append_snapshots(flushed, snaps[flushed:n_snaps])
            flushed = max(flushed, n_snaps)
        extra = {"config": np.array(json.dumps(_fingerprint(cfg), sort_keys=True))}
        if hasattr(estimator, "state_dict"):
            extra["estimator_rng"] = np.array(json.dumps(estimator.state_dict()))
        folder.save_checkpoint(
            iteration=np.array(it),
            n_rows=np.array(n_rows),
            n_snapshots=np.array(n_snaps),
            n_prev=np.array(0 if prev_tables is None else len(prev_tables)),
            stop_next=np.array(stop_next),
            stop_reason=np.array(reason),
            **{f"prev_{i}": p for i, p in enumerate(prev_tables or [])},
            **{f"policy.{k}": v for k, v in policy.state_dict().items()},
            **{f"algorithm.{k}": v for k, v in alg.state_dict().items()},
            **extra,
        )

    t0 = time.perf_counter()
    bar = _progress(cfg.iters + 1 - start, progress, folder.path.name)
    it, stopped, updates = start, False, 0
    while True:
        if it > start and it % cfg.checkpoint_every == 0:
            checkpoint(it, len(rows), len(snaps), prev)
        # tabulate only where needed: the stop rule, an evaluation, or the iteration before one (the
        # L1 change); a network's table costs a forward pass over every state
        needed = tol > 0 or stop_next or any(k in eval_at or k == cfg.iters for k in (it, it + 1))
        with np.errstate(all="ignore"):  # a diverged policy is refused just below
            tables = setup.tabulate() if needed else None
        if tables is not None and not all(np.isfinite(t).all() for t in tables):
            raise _diverged(it, folder)
        l1 = exact.l1_distance(tables, prev) if tables is not None and prev is not None else float("nan")
        rule_hit = tol > 0 and rule != "fox2022-pg" and first_check <= it < cfg.iters and l1 < tol
        if rule_hit:
            reason = f"L1 change {l1:.3g} < {tol:g} (rule {rule})"
        final = it == cfg.iters or stop_next or rule_hit
        if it in eval_at or final:
            row = {
                "iteration": it,
                **evaluator(tables),
                **alg.metrics(policy),
                "l1_change": l1,
                "wall_time": time.perf_counter() - t0,
            }
            rows.append(row)
            folder.append_metrics(fields, row)
            if setup.snapshots:
                snaps.append(pack_tables(tables))
            if bar is not None:
                bar.set_postfix(nash_gap=f"{row['nash_gap']:.2e}")
        if final:
            stopped = stop_next or rule_hit
            break
        prev = tables
        _update(alg, policy, estimator, it, folder)
        updates += 1
        if tol > 0 and rule == "fox2022-pg":
            # the authors' projected PG compares pi_t with pi_{t-1} after computing pi_{t+1} (at
            # t = 0: pi_0 with pi_1) and returns pi_{t+1}
            if it >= 1:
                d = l1
            else:
                with np.errstate(all="ignore"):
                    after = setup.tabulate()
                if not all(np.isfinite(t).all() for t in after):
                    raise _diverged(1, folder)
                d = exact.l1_distance(after, tables)
            stop_next = bool(d < tol)
            if stop_next:
                reason = (
                    f"L1 change {d:.3g} < {tol:g} between iterations {max(it - 1, 0)} and {max(it, 1)} "
                    f"(rule fox2022-pg: checked one update behind)"
                )
        it += 1
        if bar is not None:
            bar.update(1)
        if stop_after is not None and updates >= stop_after:
            if bar is not None:
                bar.close()
            return RunResult(folder.path, policy, setup.tabulate(), rows, _stack(snaps), False, "")
    if bar is not None:
        bar.close()
    done = it
    # the state at the start of the last iteration, so that an extension or a kill during the
    # final write resumes exactly here
    n_last = 1 if rows and rows[-1]["iteration"] == done else 0
    checkpoint(done, len(rows) - n_last, len(snaps) - (n_last if setup.snapshots else 0), prev)
    snapshots = _stack(snaps)
    reason = reason if stopped else ""
    folder.save_final(
        snapshots=snapshots,
        stopped=np.array(stopped),
        stop_reason=np.array(reason),
        iteration=np.array(done),
        **{f"policy_{i}": p for i, p in enumerate(tables)},
    )
    if len(snapshots):
        acc = l1_accuracy(snapshots)
        lines = ["iteration,l1_accuracy"] + [f"{int(r['iteration'])},{v:.10g}" for r, v in zip(rows, acc)]
        atomic_write_bytes(folder.path / "l1_accuracy.csv", ("\n".join(lines) + "\n").encode())
        if plot:
            _plot_run(folder.path, rows, acc)
    return RunResult(folder.path, policy, tables, rows, snapshots, stopped, reason)


class _Schedule:
    """Membership in a sorted int64 array of iterations (8 bytes per iteration, not a set's ~60)."""

    def __init__(self, its: np.ndarray) -> None:
        self.its = its

    def __contains__(self, it: int) -> bool:
        k = int(np.searchsorted(self.its, it))
        return k < len(self.its) and int(self.its[k]) == it


def _fingerprint(cfg: TrainConfig) -> dict[str, Any]:
    """What a checkpoint must agree with: the config but ``iters`` (an extension changes it) and
    ``out`` (a run folder can be moved)."""
    return config_record(config_dict(cfg), ("iters", "out"))


def _diverged(it: int, folder: RunFolder) -> ValueError:
    return ValueError(
        f"iteration {it}: the policy is not finite (the run diverged; lower the step size); "
        f"{folder.path} keeps the iterations before"
    )


def _finite_policy(policy: Policy) -> bool:
    return all(np.isfinite(np.asarray(v, dtype=np.float64)).all() for v in policy.state_dict().values())


def _update(alg: Algorithm, policy: Policy, estimator: Estimator, it: int, folder: RunFolder) -> None:
    """One update; a numerical blow-up inside it (a policy that became non-finite, an inner step
    that overflowed: FloatingPointError) ends the run with the divergence message naming the
    iteration."""
    try:
        with np.errstate(all="ignore"):  # overflow is detected below, not warned about
            alg.update(policy, estimator)
    except (ValueError, FloatingPointError, RuntimeError, OverflowError) as err:
        if _finite_policy(policy) and not isinstance(err, FloatingPointError):
            raise
        raise _diverged(it + 1, folder) from err


def _restore(ck: dict[str, np.ndarray], cfg: TrainConfig, setup: _Setup, folder: RunFolder):
    """Load a checkpoint into the setup's policy, algorithm and estimator; every way it can
    disagree with the run's config ends with a :class:`DamagedRunError` naming checkpoint.npz.

    Returns:
        (iteration, stop_next, stop_reason, previous tables or None).
    """
    path = folder.checkpoint_path
    delete = f"delete {path.name}, metrics.csv and the snapshots folder to restart the run"

    def damaged(what: str, advice: str = delete) -> DamagedRunError:
        return DamagedRunError(f"{path}: {what}; {advice}")

    def scalar(key: str, kind: str):
        if key not in ck:
            raise damaged(f"no {key!r} entry")
        a = ck[key]
        if a.shape != () or a.dtype.kind not in kind:
            raise damaged(f"entry {key!r} is not a scalar of the right type (shape {a.shape}, {a.dtype})")
        return a[()]

    start = int(scalar("iteration", "iu"))
    n_prev = int(scalar("n_prev", "iu"))
    n_snaps = int(scalar("n_snapshots", "iu"))
    if start < 0 or n_prev < 0 or n_snaps < 0:
        raise damaged(f"negative counters (iteration {start}, n_prev {n_prev}, n_snapshots {n_snaps})")
    if start > cfg.iters:
        raise damaged(
            f"it is at iteration {start:,}, past the run's iters = {cfg.iters:,} (config.json)",
            f"resume with iters >= {start:,} to extend the run, or restore config.json",
        )
    if "config" in ck:
        text = str(scalar("config", "U"))
        try:
            saved = json.loads(text)
        except ValueError:
            raise damaged("its config entry is not valid JSON") from None
        if not isinstance(saved, dict):
            raise damaged("its config entry is not a JSON object")
        now = _fingerprint(cfg)
        changed = changed_entries(saved, now)
        if changed:
            diff = ", ".join(f"{k}: {saved.get(k)!r} -> {now.get(k)!r}" for k in changed)
            raise damaged(
                f"written with another config than config.json's ({diff})",
                "restore config.json (only an extension with resume and iters may change it)",
            )
    stop_next = bool(scalar("stop_next", "b")) if "stop_next" in ck else False
    reason = str(scalar("stop_reason", "U")) if "stop_reason" in ck else ""
    # the policy: exactly the parameters the config's policy has, with their shapes
    expected = setup.policy.state_dict()
    saved_policy = {k[7:]: v for k, v in ck.items() if k.startswith("policy.")}
    if set(saved_policy) != set(expected):
        missing, extra = sorted(set(expected) - set(saved_policy)), sorted(set(saved_policy) - set(expected))
        raise damaged(
            f"its policy parameters do not fit the {cfg.algo} policy of config.json (missing "
            f"{missing or 'none'}, unexpected {extra or 'none'})"
        )
    for k, v in expected.items():
        got = saved_policy[k]
        if np.shape(got) != np.shape(v) or got.dtype.kind not in "fiu":
            raise damaged(
                f"policy parameter {k!r} has shape {np.shape(got)} ({got.dtype}); the {cfg.algo} policy "
                f"of config.json needs {np.shape(v)}"
            )
    try:
        setup.policy.load_state_dict(saved_policy)
        setup.algorithm.load_state_dict({k[10:]: v for k, v in ck.items() if k.startswith("algorithm.")})
    except (ValueError, KeyError, TypeError, RuntimeError, IndexError) as err:
        raise damaged(f"cannot restore the policy or the optimiser ({err})") from None
    estimator = setup.estimator
    if hasattr(estimator, "load_state_dict"):
        if "estimator_rng" not in ck:
            raise damaged(
                f"no random state of the {cfg.estimator} estimator (entry 'estimator_rng'): resumed on "
                "a fresh stream the run would differ from an uninterrupted one"
            )
        try:
            estimator.load_state_dict(json.loads(str(scalar("estimator_rng", "U"))))
        except ValueError as err:
            raise damaged(f"its estimator random state is damaged ({err})") from None
    prev = None
    if n_prev:
        shapes = [t.shape for t in setup.tabulate()]
        if n_prev != len(shapes):
            raise damaged(f"n_prev = {n_prev}, but the policy has {len(shapes)} agents")
        prev = []
        for i, shape in enumerate(shapes):
            p = ck.get(f"prev_{i}")
            if p is None or p.shape != shape or p.dtype.kind != "f" or not np.isfinite(p).all():
                raise damaged(f"entry 'prev_{i}' is missing or not a finite float table of shape {shape}")
            prev.append(p)
    return start, stop_next, reason, prev


def _stack(snaps: list[np.ndarray]) -> np.ndarray:
    return np.stack(snaps) if snaps else np.zeros((0,), np.float32)


def _progress(total: int, enabled: bool, desc: str):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc=desc)


def _plot_run(run_dir: Path, rows: list[dict], l1: np.ndarray) -> None:
    """metrics.png: L1 accuracy, Nash gap and POA against the iteration. Drawn on a bare Figure
    (no pyplot) with a fixed layout: pyplot and tight_layout were most of the end-of-run cost."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        return
    its = [int(r["iteration"]) for r in rows]
    fig = Figure(figsize=(13, 3.6))
    axes = fig.subplots(1, 3)
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.15, top=0.88, wspace=0.3)
    axes[0].semilogy(its[:-1], np.maximum(l1[:-1], 1e-14))
    axes[0].set(xlabel="iteration", ylabel="L1-accuracy to the final policy")
    axes[1].semilogy(its, np.maximum([float(r["nash_gap"]) for r in rows], 1e-14))
    axes[1].set(xlabel="iteration", ylabel="Nash gap (exact)")
    axes[2].plot(its, [float(r["poa"]) for r in rows])
    axes[2].set(xlabel="iteration", ylabel="price of anarchy")
    fig.suptitle(run_dir.name, fontsize=9)
    fig.savefig(run_dir / "metrics.png", dpi=110)


def algorithm_options(name: str) -> list[str]:
    """The option names of an algorithm (for messages)."""
    return [f.name for f in algorithm_class(name).config_fields()]
