"""Decentralized consensus policy gradient (paper 004, Algorithm 1) for tabular softmax policies.

N agents, one per task of a multi-task GridWorld, each keep their own logits ``theta_i`` (S, A) of
one shared policy ``pi(a | cell)`` and exchange them only with their neighbours on a communication
graph (:mod:`baselines.consensus.graphs`). Every iteration k each agent

1. sends ``theta_i^k`` to its neighbours and receives theirs;
2. computes ``g_i^k``, the gradient of its local regularised objective ``L_i^lambda(theta_i^k;
   mu_i) = V_i(mu_i) - lambda RE(pi)`` (eqs. 6-8) from its own task only: **exact** (the task's
   model) or **montecarlo** (REINFORCE from ``episodes`` rollouts of ``horizon`` steps in its own
   task, the paper's §5.1);
3. updates ``theta_i^{k+1} = sum_j W_ij theta_j^k + alpha_k g_i^k`` (eq. 9), with ``alpha_k = alpha
   / (k + 1)^alpha_decay``.

``gradient_at="mixed"`` evaluates ``g_i`` at the mixed point ``sum_j W_ij theta_j^k`` instead
(combine-then-adapt; with ``W = 11^T / N`` its average iterate is exactly centralised gradient
ascent on ``(1/N) sum_i L_i^lambda``). ``communicate=False`` gives the single-agent baselines SA-i:
the same training with ``W = I``.

The algorithm is written once over the *local* agents of a backend: the single-process backend
holds all N agents' logits stacked (N, S, A) and mixes them with one product by W; the
``torch.distributed`` backend (:mod:`baselines.consensus.distributed`) holds one agent per rank and
exchanges with graph neighbours only. Agent i draws from its own generator, seeded by
``(seed, i)``, in the same order in both, so both give the same iterates to round-off.

Runs are folders (``config.json``, ``metrics.csv``, ``checkpoints/``, ``final.npz``) resumable
after a kill at any moment: every agent checkpoints its own logits and generator, and a resumed
run restarts from the latest iteration that every agent saved.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from baselines.consensus.graphs import Topology
from baselines.consensus.objective import TaskSet, regularizer_gradient, relative_entropy, softmax_logits
from baselines.runs import DamagedRunError, RunFolder, atomic_savez
from baselines.sampler import returns_to_go
from mpg_envs import _validate as V
from mpg_envs.exact import _one_blas_thread

__all__ = [
    "DCPGConfig",
    "DCPGResult",
    "SingleProcess",
    "LocalAgents",
    "run_dcpg",
    "load_dcpg_config",
    "montecarlo_gradients",
    "agent_generator",
    "GRADIENTS",
]

GRADIENTS = ("exact", "montecarlo")
CONFIG_KIND = "dcpg"


@dataclass
class DCPGConfig:
    """Everything that defines a DCPG run (the CLI's ``dcpg`` options)."""

    layout: str | list[str] = field(
        default="no_conflict",
        metadata={"help": "MultiTaskGridWorld layout name, or one grid string per task"},
    )
    slip: float = field(
        default=0.0, metadata={"help": "probability that a random action replaces the chosen one"}
    )
    gamma: float = field(default=0.95, metadata={"help": "discount of every task, in (0, 1)"})
    chain_p: float = field(default=0.75, metadata={"help": "p of the chain_slip layout"})
    graph: str = field(
        default="ring",
        metadata={"help": "communication graph: ring (paper 004), path, star, complete, random"},
    )
    graph_p: float = field(default=0.5, metadata={"help": "edge probability of the random graph"})
    weights: str = field(
        default="lazy_metropolis",
        metadata={"help": "mixing weights: lazy_metropolis (paper 004), metropolis_hastings, max_degree"},
    )
    communicate: bool = field(
        default=True, metadata={"help": "false: no communication (W = I), the single-agent baselines SA-i"}
    )
    lam: float = field(default=0.0, metadata={"help": "relative-entropy weight lambda >= 0 (eqs. 6-8)"})
    alpha: float = field(default=1.0, metadata={"help": "step size alpha > 0"})
    alpha_decay: float = field(
        default=0.0, metadata={"help": "alpha_k = alpha / (k + 1)^alpha_decay (0: constant)"}
    )
    gradient: str = field(
        default="montecarlo",
        metadata={"help": "local gradient: montecarlo (REINFORCE rollouts, paper 004 §5.1) or exact"},
    )
    gradient_at: str = field(
        default="own",
        metadata={
            "help": "own: g_i at theta_i^k (eq. 9); mixed: at sum_j W_ij theta_j^k (combine-then-adapt)"
        },
    )
    episodes: int = field(default=1, metadata={"help": "montecarlo: episodes per agent per iteration"})
    horizon: int = field(default=100, metadata={"help": "montecarlo: steps per episode"})
    train_start: str = field(
        default="task",
        metadata={
            "help": "mu_i: task (each task's own start rho_i) or uniform (every free, non-terminal cell)"
        },
    )
    init: str = field(
        default="zeros", metadata={"help": "initial logits, equal for all agents: zeros (uniform) or normal"}
    )
    iters: int = field(default=1000, metadata={"help": "iterations (paper 004: 1000 training episodes)"})
    seed: int = field(default=0, metadata={"help": "seed of every agent's stream (seed, agent)"})
    eval_every: int = field(default=50, metadata={"help": "exact metrics every k iterations"})
    eval_log: bool = field(default=True, metadata={"help": "also at 1, 2, 3, 5, 7, 10, 15, ... and the last"})
    success_horizon: int = field(default=100, metadata={"help": "steps of the exact success rate"})
    checkpoint_every: int = field(default=100, metadata={"help": "checkpoint every k iterations"})
    out: str = field(default="runs", metadata={"help": "directory that receives run folders"})

    def validate(self) -> None:
        """Check every field; ``ValueError`` naming the bad one."""
        for name in ("slip", "chain_p", "graph_p"):
            V.probability(name, getattr(self, name))
        V.discount("gamma", self.gamma, allow_one=False)
        V.one_of("gradient", self.gradient, GRADIENTS)
        V.one_of("gradient_at", self.gradient_at, ("own", "mixed"))
        V.one_of("train_start", self.train_start, ("task", "uniform"))
        V.one_of("init", self.init, ("zeros", "normal"))
        V.flag("communicate", self.communicate)
        V.flag("eval_log", self.eval_log)
        for name in ("episodes", "horizon", "eval_every", "success_horizon", "checkpoint_every"):
            V.positive_int(name, getattr(self, name))
        V.integer("iters", self.iters, minimum=0)
        V.integer("seed", self.seed, minimum=0)
        V.real("lam", self.lam, low=0.0)
        V.real("alpha", self.alpha, low=0.0, low_open=True)
        V.real("alpha_decay", self.alpha_decay, low=0.0)


def load_dcpg_config(data: dict[str, Any]) -> DCPGConfig:
    """A config from its JSON form (``config.json``); unknown keys are refused."""
    known = {f.name for f in dataclasses.fields(DCPGConfig)}
    body = {k: v for k, v in data.items() if k != "kind"}
    extra = set(body) - known
    if data.get("kind") != CONFIG_KIND or extra:
        raise DamagedRunError(
            f"not a DCPG run config (kind {data.get('kind')!r}, unknown keys {sorted(extra)})"
        )
    return DCPGConfig(**body)


@dataclass
class DCPGResult:
    """What a finished run returns.

    Attributes:
        run_dir: The run folder.
        thetas: Every agent's final logits, shape (N, S, A) (on the main process; None elsewhere).
        metrics: Rows of metrics.csv.
    """

    run_dir: Path
    thetas: np.ndarray | None
    metrics: list[dict[str, float]]

    @property
    def policy(self) -> np.ndarray:
        """The averaged agents' policy softmax(mean_i theta_i), shape (S, A)."""
        return softmax_logits(self.thetas.mean(axis=0))


def agent_generator(seed: int, agent: int) -> np.random.Generator:
    """Agent ``agent``'s own stream, the same in every backend."""
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(int(agent),)))


def _alpha(cfg: DCPGConfig, k: int) -> float:
    return cfg.alpha / (k + 1) ** cfg.alpha_decay if cfg.alpha_decay else cfg.alpha


# ------------------------------------------------------------------------------ local gradients
def montecarlo_gradients(
    dynamics,
    thetas: np.ndarray,
    rngs: Sequence[np.random.Generator],
    mu: np.ndarray,
    episodes: int,
    horizon: int,
    gamma: float,
) -> np.ndarray:
    """REINFORCE estimates of ``dV_i(mu_i)/dtheta_i`` for tabular softmax logits, one per agent.

    Agent j runs ``episodes`` episodes of ``horizon`` steps in its own task (task j of
    ``dynamics``, stepped by the env's own :meth:`MultiTaskDynamics.step`), drawing its start cells,
    action uniforms and transition noise from ``rngs[j]`` in that order; then
    ``g_j = 1/B sum_b sum_t gamma^t G_t (e_{a_t} - pi_j(.|s_t))`` in row ``s_t``, with ``G_t`` the
    discounted return from t (truncated at the horizon).

    Args:
        dynamics: A ``MultiTaskDynamics`` of the local agents' tasks (n tasks).
        thetas: Logits, shape (n, S, A).
        rngs: n generators.
        mu: Start distributions, shape (n, S).
        episodes: B >= 1.
        horizon: T >= 1.
        gamma: Discount.

    Returns:
        Gradient estimates, shape (n, S, A).
    """
    n, S, A = thetas.shape
    B, T = int(episodes), int(horizon)
    pi = softmax_logits(thetas)
    cdf = np.cumsum(pi[:, :, :-1], axis=2)  # (n, S, A - 1)
    K = dynamics.next_cell.shape[3]
    ncdf = np.full((n, max(K - 1, 1)), np.inf)
    for j, p in enumerate(dynamics.noise_probs):
        ncdf[j, : len(p) - 1] = np.cumsum(p[:-1])
    starts = np.empty((B, n), np.int64)
    u_act = np.empty((T, B, n))
    u_noise = np.empty((T, B, n))
    for j, rng in enumerate(rngs):  # each agent's draws, in a fixed order (backend-independent)
        starts[:, j] = rng.choice(S, size=B, p=mu[j])
        u_act[:, :, j] = rng.random((B, T)).T
        u_noise[:, :, j] = rng.random((B, T)).T
    agents = np.arange(n)
    term = dynamics.cell_terminal.ravel()  # (n * S,): row j * S + s
    cdf_rows = cdf.reshape(n * S, A - 1)
    noisy = K > 1
    zero_noise = np.zeros((B, n), np.int64)
    states = np.empty((T, B, n), np.int64)
    actions = np.empty((T, B, n), np.int64)
    rewards = np.zeros((T, B, n))
    alive = np.zeros((T, B, n), bool)
    s = starts
    offset = agents * S
    steps = T
    for t in range(T):  # T vectorised steps of every local agent's episodes
        row = s + offset
        live = ~term[row]
        if not live.any():
            steps = t
            break
        a = (u_act[t][..., None] >= cdf_rows[row]).sum(axis=2)
        k = (u_noise[t][..., None] >= ncdf[None]).sum(axis=2) if noisy else zero_noise
        nxt, r = dynamics.step(s, a, k)
        states[t], actions[t], rewards[t], alive[t] = s, a, r, live
        s = nxt
    states, actions, rewards, alive = states[:steps], actions[:steps], rewards[:steps], alive[:steps]
    G = returns_to_go(rewards.transpose(1, 0, 2), gamma).transpose(1, 0, 2)  # (T, B, n)
    w = np.where(alive, gamma ** np.arange(steps)[:, None, None] * G, 0.0)
    flat_sa = (agents * S * A + states * A + actions).ravel()
    flat_s = (agents * S + states).ravel()
    g_sa = np.bincount(flat_sa, weights=w.ravel(), minlength=n * S * A).reshape(n, S, A)
    w_s = np.bincount(flat_s, weights=w.ravel(), minlength=n * S).reshape(n, S)
    return (g_sa - w_s[..., None] * pi) / B


class LocalAgents:
    """The agents a process holds: their tasks, generators and local gradients.

    Args:
        cfg: The run's config.
        tasks: The tasks of the whole problem (``MultiTaskGridWorldEnv.tasks``).
        taskset: Their exact models (:class:`TaskSet`).
        agents: Indices of the local agents.
    """

    def __init__(self, cfg: DCPGConfig, tasks, taskset: TaskSet, agents: Sequence[int]) -> None:
        from mpg_envs.gridworld.dynamics import MultiTaskDynamics

        self.cfg = cfg
        self.agents = np.asarray(agents, dtype=np.int64)
        self.taskset = taskset
        self.dynamics = MultiTaskDynamics([tasks[i] for i in self.agents])
        self.rngs = [agent_generator(cfg.seed, i) for i in self.agents]
        if cfg.train_start == "task":
            self.mu = taskset.rho[self.agents]
        else:
            free = np.stack([~(t.terminal | t.walls) for t in (tasks[i] for i in self.agents)]).astype(float)
            self.mu = free / free.sum(axis=1, keepdims=True)

    def gradients(self, thetas: np.ndarray) -> np.ndarray:
        """g_i for the local agents' logits (n, S, A): local gradient plus the regulariser."""
        cfg = self.cfg
        if cfg.gradient == "exact":
            g, _ = self.taskset.gradient(thetas, self.agents, cfg.lam, self.mu)
            return g
        g = montecarlo_gradients(
            self.dynamics, thetas, self.rngs, self.mu, cfg.episodes, cfg.horizon, self.taskset.gamma
        )
        if cfg.lam:
            g = g + regularizer_gradient(softmax_logits(thetas), cfg.lam)
        return g

    def rng_states(self) -> list[dict[str, Any]]:
        return [copy.deepcopy(r.bit_generator.state) for r in self.rngs]

    def set_rng_states(self, states: Sequence[dict[str, Any]]) -> None:
        for r, s in zip(self.rngs, states):
            r.bit_generator.state = copy.deepcopy(s)


# ------------------------------------------------------------------------------ backends
class SingleProcess:
    """All N agents in one process: logits stacked (N, S, A), the consensus step one product by W."""

    rank, world_size, is_main = 0, 1, True

    def __init__(self, topology: Topology, communicate: bool = True) -> None:
        self.n_agents = topology.graph.n
        self.agents = np.arange(self.n_agents)
        self.W = topology.weights if communicate else np.eye(self.n_agents)

    def mix(self, thetas: np.ndarray) -> np.ndarray:
        """sum_j W_ij theta_j for every agent: (N, S, A) -> (N, S, A)."""
        return (self.W @ thetas.reshape(self.n_agents, -1)).reshape(thetas.shape)

    def gather(self, thetas: np.ndarray) -> np.ndarray | None:
        return thetas

    def broadcast(self, obj: Any) -> Any:
        return obj

    def common_iteration(self, available: set[int]) -> int | None:
        return max(available) if available else None

    def barrier(self) -> None:
        pass


# ------------------------------------------------------------------------------ metrics
def metric_fields(n_tasks: int) -> list[str]:
    """The columns of metrics.csv for N tasks."""
    return [
        "iteration",
        "objective",
        "objective_reg",
        "consensus_error",
        "stationarity",
        *[f"objective_agent_{j}" for j in range(n_tasks)],
        *[f"value_task_{i}" for i in range(n_tasks)],
        *[f"success_task_{i}" for i in range(n_tasks)],
        *[f"survived_task_{i}" for i in range(n_tasks)],
        "alpha",
        "wall_time",
    ]


def evaluate(taskset: TaskSet, thetas: np.ndarray, lam: float, horizon: int) -> dict[str, float]:
    """Exact metrics of all agents' logits (N, S, A) (one batched solve per quantity).

    ``objective``: sum_i V_i(rho_i) of the averaged logits' policy; ``objective_reg``: L^lambda
    there; ``consensus_error``: max_j ||theta_j - mean||; ``stationarity``: max_j ||1/N sum_i
    grad V_i(theta_j)|| (Theorem 1's quantity); per agent j, the objective of its own policy; per
    task i, the averaged policy's value, success rate and steps survived.
    """
    N = len(thetas)
    mean = thetas.mean(axis=0)
    mean_pi = softmax_logits(mean)
    tasks = np.arange(N)
    vals = taskset.values_at_start(np.repeat(mean_pi[None], N, axis=0), tasks)
    success, survived = taskset.outcomes(np.repeat(mean_pi[None], N, axis=0), tasks, horizon)
    # every agent's policy in every task: the gradients give V_i(rho_i) of each pair as well
    grads, own_vals = taskset.gradient(np.repeat(thetas, N, axis=0), np.tile(tasks, N))
    station = np.linalg.norm(grads.reshape(N, N, -1).mean(axis=1), axis=1).max()
    own = own_vals.reshape(N, N).sum(axis=1)
    obj = float(vals.sum())
    row = {
        "objective": obj,
        "objective_reg": float(obj - N * lam * relative_entropy(mean_pi)) if lam else obj,
        "consensus_error": float(np.linalg.norm((thetas - mean).reshape(N, -1), axis=1).max()),
        "stationarity": float(station),
    }
    row.update({f"objective_agent_{j}": float(own[j]) for j in range(N)})
    row.update({f"value_task_{i}": float(vals[i]) for i in range(N)})
    row.update({f"success_task_{i}": float(success[i]) for i in range(N)})
    row.update({f"survived_task_{i}": float(survived[i]) for i in range(N)})
    return row


# ------------------------------------------------------------------------------ the run
def _make_env(cfg: DCPGConfig):
    from mpg_envs.gridworld.env import MultiTaskGridWorldEnv

    return MultiTaskGridWorldEnv(layout=cfg.layout, slip=cfg.slip, chain_p=cfg.chain_p, gamma=cfg.gamma)


def _run_name(cfg: DCPGConfig) -> str:
    layout = cfg.layout if isinstance(cfg.layout, str) else f"custom{len(cfg.layout)}"
    algo = f"dcpg-{cfg.gradient}" if cfg.communicate else f"sa-{cfg.gradient}"
    return f"{layout}__{algo}__{cfg.seed}"


def _initial(cfg: DCPGConfig, S: int, A: int) -> np.ndarray:
    if cfg.init == "zeros":
        return np.zeros((S, A))
    return np.random.default_rng(np.random.SeedSequence(int(cfg.seed), spawn_key=(1 << 30,))).normal(
        size=(S, A)
    )


def _ckpt_dir(folder: RunFolder) -> Path:
    return folder.path / "checkpoints"


def _saved_iterations(folder: RunFolder, agent: int) -> set[int]:
    d = _ckpt_dir(folder)
    if not d.is_dir():
        return set()
    return {int(p.stem.split("_")[1]) for p in d.glob(f"agent{agent:04d}_*.npz")}


def _save_agents(folder: RunFolder, it: int, agents, thetas, rng_states) -> None:
    d = _ckpt_dir(folder)
    d.mkdir(exist_ok=True)
    for i, th, st in zip(agents, thetas, rng_states):
        atomic_savez(d / f"agent{int(i):04d}_{it:08d}.npz", theta=th, rng=np.array(json.dumps(st)))


def _prune(folder: RunFolder, keep: int, agents) -> None:
    for i in agents:
        for it in _saved_iterations(folder, int(i)):
            if it < keep:
                (_ckpt_dir(folder) / f"agent{int(i):04d}_{it:08d}.npz").unlink(missing_ok=True)


def _load_agent(folder: RunFolder, agent: int, it: int) -> tuple[np.ndarray, dict[str, Any]]:
    p = _ckpt_dir(folder) / f"agent{agent:04d}_{it:08d}.npz"
    try:
        with np.load(p, allow_pickle=False) as z:
            return np.array(z["theta"]), json.loads(str(z["rng"]))
    except (OSError, ValueError, KeyError, EOFError) as err:
        raise DamagedRunError(
            f"{p}: cannot read the checkpoint ({err}); delete it to resume from an earlier one"
        ) from None


def run_dcpg(
    cfg: DCPGConfig | None = None,
    *,
    backend: Any = None,
    resume: str | Path | None = None,
    iters: int | None = None,
    progress: bool = False,
    stop_after: int | None = None,
    plot: bool = False,
) -> DCPGResult:
    """Train with DCPG (or SA-i with ``communicate=False``) and write a run folder.

    Args:
        cfg: The config (ignored with ``resume``: the folder's own is used).
        backend: ``"single"`` (default) or ``"dist"`` (one ``torch.distributed`` rank per task,
            under ``torchrun``), built from the config's graph; or a backend object
            (:class:`SingleProcess`, :class:`~baselines.consensus.distributed.DistributedBackend`).
        resume: A run folder to continue from its latest complete checkpoint.
        iters: With ``resume``, extend the run to this many iterations.
        progress: Show a progress bar (main process only).
        stop_after: Return after this many updates without finishing (tests: a simulated kill).
        plot: Also draw ``metrics.png`` (objective, consensus error, success rates) and
            ``policy.png`` (the averaged policy's most likely path in every task) with matplotlib.

    Returns:
        The :class:`DCPGResult`.

    Example:
        >>> from baselines.consensus import DCPGConfig, run_dcpg
        >>> res = run_dcpg(DCPGConfig(layout="no_conflict", gradient="exact", iters=200, out="/tmp/runs"))
        >>> res.metrics[-1]["objective"] > res.metrics[0]["objective"]
        True
    """
    if resume is not None:
        folder = RunFolder(resume)
        cfg = load_dcpg_config(folder.read_config())
        if iters is not None:
            V.integer("iters", iters, minimum=0)
            cfg = dataclasses.replace(cfg, iters=int(iters))
    if cfg is None:
        raise ValueError("give a DCPGConfig or a run folder to resume")
    cfg.validate()
    env = _make_env(cfg)
    N = len(env.tasks)
    taskset = TaskSet.from_env(env)
    S, A = taskset.n_states, taskset.n_actions
    topology = Topology.make(cfg.graph, N, weights=cfg.weights, seed=cfg.seed, p=cfg.graph_p)
    if backend is None or backend == "single":
        backend = SingleProcess(topology, cfg.communicate)
    elif backend == "dist":
        from baselines.consensus.distributed import DistributedBackend

        backend = DistributedBackend(topology, cfg.communicate)
    elif isinstance(backend, str):
        raise ValueError(f"backend must be 'single', 'dist' or a backend object, got {backend!r}")
    elif backend.n_agents != N:
        raise ValueError(f"the backend has {backend.n_agents} agents but the layout has {N} tasks")
    if resume is None:
        folder = None
        if backend.is_main:
            folder = RunFolder.create(cfg.out, _run_name(cfg))
            folder.write_config({"kind": CONFIG_KIND, **dataclasses.asdict(cfg)})
        folder = RunFolder(backend.broadcast(str(folder.path) if folder else None))
    elif backend.is_main and iters is not None:
        folder.write_config({"kind": CONFIG_KIND, **dataclasses.asdict(cfg)})
    local = LocalAgents(cfg, env.tasks, taskset, backend.agents)
    fields = metric_fields(N)

    # ---------------------------------------------------------------- start or resume
    available = set.intersection(*[_saved_iterations(folder, int(i)) for i in backend.agents])
    start = backend.common_iteration(available)
    if start is None:
        start = 0
        thetas = np.repeat(_initial(cfg, S, A)[None], len(backend.agents), axis=0)
        rows: list[dict[str, float]] = []
    else:
        loaded = [_load_agent(folder, int(i), start) for i in backend.agents]
        thetas = np.stack([t for t, _ in loaded])
        local.set_rng_states([s for _, s in loaded])
        rows = folder.read_metrics(fields, before=start) if backend.is_main else []
    if backend.is_main:
        folder.clean_temporaries()
        folder.final_path.unlink(missing_ok=True)
        folder.start_metrics(fields, rows)
    with _one_blas_thread(S):  # small dense solves: one BLAS thread (see mpg_envs.exact)
        res = _loop(cfg, backend, folder, local, taskset, fields, start, thetas, rows, progress, stop_after)
    if plot and backend.is_main and res.thetas is not None:
        _plot_run(res, env.tasks)
    return res


def _loop(
    cfg, backend, folder, local, taskset, fields, start, thetas, rows, progress, stop_after
) -> DCPGResult:
    from baselines.evaluation import evaluation_iterations

    eval_at = set(evaluation_iterations(cfg.iters, cfg.eval_every, cfg.eval_log).tolist())
    bar = None
    if progress and backend.is_main:
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.iters, initial=start, desc=folder.path.name, unit="it")
    t0 = time.perf_counter()
    it = start
    while True:
        if it > start and it % cfg.checkpoint_every == 0:
            _save_agents(folder, it, backend.agents, thetas, local.rng_states())
            backend.barrier()  # every agent saved `it`: older checkpoints can go
            _prune(folder, it, backend.agents)
        if it in eval_at or it == cfg.iters:
            everyone = backend.gather(thetas)
            if backend.is_main:
                row = {"iteration": it, **evaluate(taskset, everyone, cfg.lam, cfg.success_horizon)}
                row.update(alpha=_alpha(cfg, it), wall_time=time.perf_counter() - t0)
                rows.append(row)
                folder.append_metrics(fields, row)
                if bar is not None:
                    bar.set_postfix(
                        objective=f"{row['objective']:.3f}", consensus=f"{row['consensus_error']:.1e}"
                    )
        if it == cfg.iters:
            break
        if stop_after is not None and it - start >= stop_after:
            if bar is not None:
                bar.close()
            return DCPGResult(folder.path, None, rows)
        mixed = backend.mix(thetas)
        g = local.gradients(mixed if cfg.gradient_at == "mixed" else thetas)
        thetas = mixed + _alpha(cfg, it) * g
        it += 1
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    # the state at the start of the last iteration, so that an extension resumes exactly here
    _save_agents(folder, it, backend.agents, thetas, local.rng_states())
    backend.barrier()
    _prune(folder, it, backend.agents)
    everyone = backend.gather(thetas)
    if backend.is_main:
        folder.save_final(
            thetas=everyone, policy=softmax_logits(everyone.mean(axis=0)), iteration=np.array(it)
        )
    backend.barrier()
    return DCPGResult(folder.path, everyone if backend.is_main else None, rows)


def _plot_run(res: DCPGResult, tasks) -> None:
    """``metrics.png`` and ``policy.png`` in the run folder (skipped without matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    from mpg_envs.gridworld.env import draw_tasks

    rows, N = res.metrics, len(res.thetas)
    its = [int(r["iteration"]) for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    own = np.array([[r[f"objective_agent_{j}"] for j in range(N)] for r in rows])
    axes[0].plot(its, [r["objective"] for r in rows], label="agents' average")
    axes[0].fill_between(its, own.min(axis=1), own.max(axis=1), alpha=0.3, label="each agent's own")
    axes[0].set(xlabel="iteration", ylabel="sum_i V_i(rho_i) (exact)")
    axes[0].legend(fontsize=8)
    ce = [
        (i, r["consensus_error"]) for i, r in zip(its, rows) if r["consensus_error"] > 0
    ]  # 0 at a common start
    axes[1].semilogy([i for i, _ in ce], [c for _, c in ce])
    axes[1].set(xlabel="iteration", ylabel="consensus error max_i ||theta_i - mean||")
    for i in range(N):
        axes[2].plot(its, [r[f"success_task_{i}"] for r in rows], label=f"task {i + 1}")
    axes[2].set(xlabel="iteration", ylabel="P(goal within the horizon)", ylim=(-0.02, 1.02))
    axes[2].legend(fontsize=7)
    fig.suptitle(res.run_dir.name, fontsize=9)
    fig.tight_layout()
    fig.savefig(res.run_dir / "metrics.png", dpi=110)
    plt.close(fig)
    plt.imsave(res.run_dir / "policy.png", draw_tasks(tasks, None, res.policy))
