"""Exact multi-task quantities of paper 004 for one shared tabular policy, batched over policies.

A :class:`TaskSet` holds the per-task exact models of a multi-task GridWorld (one single-agent
:class:`~mpg_envs.model.TabularModel` per task, built by the env from its own dynamics) as dense
arrays, so that many (policy, task) pairs are evaluated in one batched linear solve:

* values ``V_i^pi(s)`` and ``Q_i^pi(s, a)``; the objective ``sum_i V_i^pi(rho_i)`` (eq. 5);
* the relative-entropy regulariser ``RE(pi) = -1/(|S||A|) sum_{s,a} log pi(a|s) - log |A|`` (eq. 6);
* the gradient of ``L_i^lambda(theta; mu_i) = V_i(mu_i) - lambda RE(pi_theta)`` w.r.t. tabular
  softmax logits (eq. 8): ``occ_i(s) pi(a|s) A_i(s, a) + lambda/|S| (1/|A| - pi(a|s))`` with
  ``occ_i = d_{i,mu_i} / (1 - gamma)``;
* success rates: the probability of reaching one of task i's goals within H steps from rho_i, and
  the expected number of steps survived before an obstacle (the analog of paper 004's "mean safe
  flight").
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from baselines.policies.tabular import softmax_rows
from mpg_envs import _validate as V
from mpg_envs._repr import Raw, concise_repr
from mpg_envs.exact import blas_scope
from mpg_envs.model import TabularModel

__all__ = [
    "TaskSet",
    "SharedOptimum",
    "shared_optimum",
    "relative_entropy",
    "regularizer_gradient",
    "softmax_logits",
]


def softmax_logits(theta: np.ndarray) -> np.ndarray:
    """Row softmax over the last axis of logits (..., S, A) -> probabilities (..., S, A)."""
    if not isinstance(theta, np.ndarray) or theta.dtype.kind not in "fiu":
        theta = V.real_array("theta", theta, finite=False)
    if theta.ndim < 1 or theta.shape[-1] < 1:
        raise ValueError(f"theta must be logits of shape (..., S, A) with A >= 1, got shape {theta.shape}")
    shape = theta.shape
    return softmax_rows(theta.reshape(-1, shape[-1])).reshape(shape)


def relative_entropy(pi: np.ndarray) -> np.ndarray:
    """Paper 004 eq. (6), ``E_{s ~ Unif} KL(U_A || pi(.|s))``, for policies (..., S, A) -> (...)."""
    pi = _probabilities("pi", pi)
    S, A = pi.shape[-2:]
    with np.errstate(divide="ignore"):
        return -np.log(pi).sum(axis=(-2, -1)) / (S * A) - np.log(A)


def regularizer_gradient(pi: np.ndarray, lam: float) -> np.ndarray:
    """Gradient of ``-lam * RE(pi_theta)`` w.r.t. softmax logits: ``lam/|S| (1/|A| - pi)``, (..., S, A)."""
    lam = V.real("lam", lam, low=0.0)
    if not isinstance(pi, np.ndarray) or pi.dtype.kind != "f" or pi.ndim < 2:
        pi = _probabilities("pi", pi)
    S, A = pi.shape[-2:]
    return lam / S * (1.0 / A - pi)


def _probabilities(
    name: str, pi: Any, tol: float = 1e-6, what: str = "policies of shape (..., S, A)"
) -> np.ndarray:
    """Policies (..., S, A): finite, non-negative rows that sum to 1 (within ``tol``)."""
    pi = V.real_array(name, pi, what=what)
    if pi.ndim < (1 if what.startswith("distributions") else 2) or pi.shape[-1] < 1:
        raise ValueError(f"{name} must be {what}, got shape {pi.shape}")
    if pi.size and (pi.min() < 0 or np.abs(pi.sum(axis=-1) - 1.0).max() > tol):
        rows = pi.reshape(-1, pi.shape[-1])
        k = int(np.flatnonzero((rows.min(axis=1) < 0) | (np.abs(rows.sum(axis=1) - 1.0) > tol))[0])
        at = np.unravel_index(k, pi.shape[:-1])
        raise ValueError(
            f"{name} must hold probabilities (rows >= 0 that sum to 1): {name}[{', '.join(map(str, at))}] "
            f"= {V.show(rows[k].tolist())}"
        )
    return pi


class TaskSet:
    """The exact per-task models of a multi-task problem as dense, batched arrays.

    Args:
        models: One single-agent model per task, all with the same S, A and gamma < 1 (the
            per-task models of ``MultiTaskGridWorld-v0``: ``env.unwrapped.task_models()``).
        goals: Goal cells of each task, shape (N, S) bool (for success rates); default: terminal
            cells entered with a positive expected reward.
        obstacles: Obstacle cells, shape (N, S) bool; default: terminal cells with negative reward.

    Attributes:
        P: Transition probabilities, shape (N, S, A, S).
        R: Expected rewards r_i(s, a), shape (N, S, A).
        rho: Each task's initial distribution, shape (N, S).
        gamma: The common discount.
    """

    def __init__(
        self,
        models: Sequence[TabularModel],
        goals: np.ndarray | None = None,
        obstacles: np.ndarray | None = None,
    ) -> None:
        if isinstance(models, (TabularModel, str, bytes)) or not isinstance(models, Iterable):
            raise V.ArgumentTypeError(
                f"models must be a non-empty sequence of single-agent TabularModel, got {V.show(models)}"
            )
        models = list(models)
        bad = next((m for m in models if not isinstance(m, TabularModel) or m.n_agents != 1), None)
        if not models or bad is not None:
            detail = f" (an item is {V.show(bad)})" if bad is not None else " (empty)"
            raise ValueError(f"models must be a non-empty sequence of single-agent TabularModel{detail}")
        shapes = {(m.n_states, m.action_sizes[0]) for m in models}
        gammas = {m.gamma for m in models}
        if len(shapes) != 1 or len(gammas) != 1:
            raise ValueError(
                f"the task models must share S, A and gamma, got (S, A) in {shapes}, gamma in {gammas}"
            )
        (S, A), gamma = shapes.pop(), gammas.pop()
        if not gamma < 1.0:
            raise ValueError(f"the task models need gamma < 1, got {gamma}")
        self.n_tasks, self.n_states, self.n_actions, self.gamma = len(models), S, A, float(gamma)
        self.P = np.stack([m.P.toarray().reshape(S, A, S) for m in models])
        self.R = np.stack([m.R[0] for m in models])
        self.rho = np.stack([m.mu for m in models])
        self.terminal = np.stack([m.terminal for m in models])
        if goals is None or obstacles is None:
            # the reward of entering cell t: that of any (s, a) that surely lands in t from s != t
            entry = np.zeros((self.n_tasks, S))
            for n in range(self.n_tasks):
                s_idx, a_idx, t_idx = np.nonzero(self.P[n] == 1.0)
                moved = s_idx != t_idx
                entry[n, t_idx[moved]] = self.R[n, s_idx[moved], a_idx[moved]]
            goals = self.terminal & (entry > 0) if goals is None else goals
            obstacles = self.terminal & (entry < 0) if obstacles is None else obstacles
        for name, cells in (("goals", goals), ("obstacles", obstacles)):
            arr = V._array(name, cells, f"a bool array of shape (N, S) = ({self.n_tasks}, {S})")
            if arr.dtype != bool or arr.shape != (self.n_tasks, S):
                raise ValueError(
                    f"{name} must be a bool array of shape (N, S) = ({self.n_tasks}, {S}), got dtype "
                    f"{arr.dtype} and shape {arr.shape}"
                )
        self.goals = np.asarray(goals, dtype=bool)
        self.obstacles = np.asarray(obstacles, dtype=bool)
        self._eye = np.eye(S)

    @classmethod
    def from_env(cls, env) -> TaskSet:
        """From a ``MultiTaskGridWorld-v0`` env (its task models and its tasks' goals/obstacles)."""
        raw = getattr(env, "unwrapped", env)
        if not (hasattr(raw, "tasks") and hasattr(raw, "task_models")):
            raise V.ArgumentTypeError(
                f"env must be a MultiTaskGridWorld-v0 env (with tasks and task_models()), got {V.show(env)}"
            )
        env = raw
        S = env.tasks[0].n_cells
        goals = np.zeros((len(env.tasks), S), bool)
        obst = np.zeros_like(goals)
        for i, t in enumerate(env.tasks):
            goals[i, t.goals] = True
            obst[i, t.obstacles] = True
        return cls(env.task_models(), goals, obst)

    # ------------------------------------------------------------------ helpers
    def _tasks(self, tasks: np.ndarray | Sequence[int], k: int) -> np.ndarray:
        if V.is_integer(tasks):
            tasks = [tasks]
        t = V.int_array("tasks", tasks, what=f"{k} task indices in [0, {self.n_tasks})").reshape(-1)
        if t.shape != (k,) or t.min(initial=0) < 0 or t.max(initial=0) >= self.n_tasks:
            raise ValueError(
                f"tasks must be {k} indices in [0, {self.n_tasks}), got {np.asarray(tasks).tolist()}"
            )
        return t

    def _policies(self, pi: np.ndarray, logits: bool = False) -> np.ndarray:
        """(K, S, A) float64 policies (or, with ``logits``, real logits: non-finite ones pass, to
        surface as non-finite results)."""
        if logits:
            pi = V.real_array("theta", pi, finite=False, what="logits of shape (K, S, A)")
        else:
            pi = _probabilities("pi", pi)
        if pi.ndim == 2:
            pi = pi[None]
        if pi.ndim != 3 or pi.shape[1:] != (self.n_states, self.n_actions):
            raise ValueError(
                f"policies must have shape (K, S, A) = (K, {self.n_states}, {self.n_actions}), got {pi.shape}"
            )
        return pi

    def transition(self, pi: np.ndarray, tasks: np.ndarray) -> np.ndarray:
        """P_pi for every (policy, task) pair: (K, S, A), (K,) -> (K, S, S)."""
        pi = self._policies(pi)
        return self._transition(pi, self._tasks(tasks, len(pi)))

    def _transition(self, pi: np.ndarray, tasks: np.ndarray) -> np.ndarray:
        return np.einsum("ksat,ksa->kst", self.P[tasks], pi)

    # ------------------------------------------------------------------ values
    def values(self, pi: np.ndarray, tasks: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """V and Q of policies (K, S, A) in tasks (K,): shapes (K, S) and (K, S, A)."""
        pi = self._policies(pi)
        return self._values(pi, self._tasks(tasks, len(pi)))

    def _values(self, pi: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        r_pi = (self.R[t] * pi).sum(axis=2)
        with blas_scope(self.n_states):  # small batched solves: one BLAS thread
            v = np.linalg.solve(self._eye - self.gamma * self._transition(pi, t), r_pi[..., None])[..., 0]
        q = self.R[t] + self.gamma * np.einsum("ksat,kt->ksa", self.P[t], v)
        return v, q

    def values_at_start(self, pi: np.ndarray, tasks: Sequence[int]) -> np.ndarray:
        """V_i^pi(rho_i) for policies (K, S, A) in tasks (K,): shape (K,)."""
        pi = self._policies(pi)
        t = self._tasks(tasks, len(pi))
        v, _ = self._values(pi, t)
        return (v * self.rho[t]).sum(axis=1)

    def objective(self, pi: np.ndarray) -> np.ndarray:
        """Paper 004's eq. (5), ``sum_i V_i^pi(rho_i)``, for policies (K, S, A) -> (K,)."""
        pi = self._policies(pi)
        K, N = len(pi), self.n_tasks
        vals = self.values_at_start(np.repeat(pi, N, axis=0), np.tile(np.arange(N), K))
        return vals.reshape(K, N).sum(axis=1)

    def gradient(
        self,
        theta: np.ndarray,
        tasks: Sequence[int],
        lam: float = 0.0,
        mu: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exact gradient of ``L_i^lambda(theta; mu_i)`` (eq. 8) for softmax logits in tasks.

        Args:
            theta: Logits, shape (K, S, A).
            tasks: Task of each, shape (K,).
            lam: Regularisation weight lambda >= 0.
            mu: Initial distributions mu_i, shape (K, S); default each task's rho_i.

        Returns:
            The gradients (K, S, A) and the values V_i(mu_i) (K,).
        """
        theta = self._policies(theta, logits=True)
        t = self._tasks(tasks, len(theta))
        lam = V.real("lam", lam, low=0.0)
        pi = softmax_logits(theta)
        v, q = self._values(pi, t)
        if mu is None:
            mu = self.rho[t]
        else:
            mu = _probabilities("mu", mu, what="distributions over the S cells, shape (K, S) or (S,)")
            mu = mu if mu.ndim == 2 else mu.reshape(1, -1)
            mu = np.broadcast_to(mu, (len(t), mu.shape[1])) if len(mu) == 1 else mu
            if mu.shape != (len(t), self.n_states):
                raise ValueError(
                    f"mu must be initial distributions of shape (K, S) = ({len(t)}, {self.n_states}), "
                    f"got shape {mu.shape}"
                )
        m = self._eye - self.gamma * self._transition(pi, t)
        with blas_scope(self.n_states):
            occ = np.linalg.solve(np.swapaxes(m, 1, 2), mu[..., None])[..., 0]
        g = occ[..., None] * pi * (q - v[..., None])
        if lam:
            g = g + regularizer_gradient(pi, lam)
        return g, (v * mu).sum(axis=1)

    # ------------------------------------------------------------------ success
    def outcomes(self, pi: np.ndarray, tasks: Sequence[int], horizon: int) -> tuple[np.ndarray, np.ndarray]:
        """Success rate and steps survived of policies in tasks, from rho_i, over ``horizon`` steps.

        Args:
            pi: Policies, shape (K, S, A).
            tasks: Task of each, shape (K,).
            horizon: H >= 1 steps.

        Returns:
            ``success`` (K,): probability of being in a goal cell after H steps (goals absorb);
            ``survived`` (K,): expected number of steps t < H taken before entering an obstacle
            (H when none is entered), the analog of paper 004's mean safe flight.
        """
        H = V.positive_int("horizon", horizon)
        pi = self._policies(pi)
        t = self._tasks(tasks, len(pi))
        p_pi = self._transition(pi, t)
        d = self.rho[t].copy()
        obst = self.obstacles[t].astype(np.float64)
        if not _by_squaring(self.n_states, H):
            survived = np.zeros(len(t))
            for _ in range(H):  # H vectorised steps (a distribution over cells)
                d = np.einsum("ks,kst->kt", d, p_pi)
                survived += 1.0 - (d * obst).sum(axis=1)
            return (d * self.goals[t]).sum(axis=1), survived
        # log2(H) squarings: with M = P^(2^j) and b = sum_{t=1..2^j} P^t obst, a set bit j of H
        # adds d b to the obstacle mass entered so far and moves d on by 2^j steps
        M, b = p_pi, np.einsum("kst,kt->ks", p_pi, obst)
        entered = np.zeros(len(t))
        rest = H
        with blas_scope(self.n_states):
            while True:
                if rest & 1:
                    entered += (d * b).sum(axis=1)
                    d = np.einsum("ks,kst->kt", d, M)
                rest >>= 1
                if not rest:
                    break
                b = b + np.einsum("kst,kt->ks", M, b)
                M = M @ M
                M /= M.sum(axis=2, keepdims=True)  # else row sums drift by 2^j rounding errors
        return (d * self.goals[t]).sum(axis=1), H - entered


def _by_squaring(n_states: int, horizon: int) -> bool:
    """Whether :meth:`TaskSet.outcomes` squares (S, S) matrices (log2 H products of S^3) rather
    than stepping H times (H products of S^2)."""
    return horizon > 3 * n_states * max(horizon.bit_length(), 1)


def outcome_flops(n_states: int, horizon: int) -> int:
    """Floating-point operations of :meth:`TaskSet.outcomes` per (policy, task) pair (an estimate)."""
    S, H = int(n_states), int(horizon)
    return 2 * S**3 * H.bit_length() if _by_squaring(S, H) else 2 * S * S * H


# ------------------------------------------------------------------------------ the optimum
@dataclass
class SharedOptimum:
    """Brackets of the optimum of eq. (5), ``max_pi sum_i V_i^pi(rho)``, over shared policies.

    Attributes:
        bound: The best ``sum_i V_i(rho)`` of any policy that sees the cell *and* which tasks still
            run: an upper bound on every shared policy ``pi(a | cell)``.
        best: The best ``sum_i V_i(rho_i)`` of a deterministic shared policy (exact value; the
            optimum over deterministic policies when ``complete``), or None when the moves are
            random, the start is not one cell, or none beats the ``incumbent``.
        complete: Whether the search behind ``best`` finished (else ``best`` is the best found).
        policy: That deterministic policy, shape (S, A) (one-hot rows), or None.
        path: Its cells from the start.
        nodes: Search nodes visited.
    """

    bound: float
    best: float | None
    complete: bool
    policy: np.ndarray | None
    path: list[int]
    nodes: int

    def __repr__(self) -> str:
        return concise_repr(
            self,
            bound=self.bound,
            best=self.best,
            complete=self.complete,
            policy=self.policy,
            path=Raw(f"{len(self.path)} cells"),
            nodes=self.nodes,
        )


def shared_optimum(
    tasks: Sequence, gamma: float, max_nodes: int = 2_000_000, incumbent: float | None = None
) -> SharedOptimum:
    """Brackets of the optimum of the multi-task objective when all tasks move alike.

    **Upper bound.** Agents following one shared policy from one start, coupled through common
    randomness, move together until each task ends in one of its terminal cells, so
    ``sum_i V_i`` of any shared policy is the value of one MDP on (cell, set of running tasks):
    arriving in cell s' pays ``sum_{i running} reward_i(s')`` and removes the tasks for which s'
    is terminal. Its optimum (value iteration over S * 2^N states) bounds every shared policy.
    A memoryless policy may not attain it: its optimal route can need to pass a cell twice in
    different directions (on ``no_conflict``: back out of a dead end after a goal).

    **Deterministic shared policies** (deterministic moves, one start cell): such a policy's route
    never revisits a cell (it would loop forever), so the best one is the best self-avoiding route
    -- found exactly by depth-first branch and bound over routes, pruned by the bound above
    (admissible), children in the order of the bound's Q-values; it may stop (loop or stand
    against an edge) at any point. Stochastic shared policies can beat deterministic ones (paper
    004's first chain), so the optimum lies in ``[best, bound]``.

    Args:
        tasks: ``MultiTaskGridWorldEnv.tasks`` (``Task`` objects: P (S, A, S), reward (S,) paid
            on arrival, terminal (S,), start (S,)), 1 to 12 tasks.
        gamma: The discount, in (0, 1).
        max_nodes: Search budget; ``complete`` says whether the search finished within it.
        incumbent: A value known to be attained (e.g. by a trained policy): the search then looks
            only for deterministic policies that beat it, which prunes far more; ``best`` is None
            when none does (with ``complete``: no deterministic shared policy beats it).

    Raises:
        ValueError: Tasks with different starts, or whose moves differ in a cell where both run.
    """
    tasks = list(tasks)
    N = len(tasks)
    if not 1 <= N <= 12:
        raise ValueError(f"shared_optimum takes 1 to 12 tasks (S * 2^N states), got {N}")
    P = np.stack([np.asarray(t.P, np.float64) for t in tasks])  # (N, S, A, S)
    S, A = P.shape[1:3]
    term = np.stack([t.terminal for t in tasks])  # (N, S)
    rew = np.stack([t.reward for t in tasks]).astype(np.float64)  # (N, S)
    start = np.asarray(tasks[0].start, np.float64)
    if any(not np.allclose(t.start, start) for t in tasks):
        raise ValueError("shared_optimum needs one start distribution for all tasks")
    for i in range(N):
        for j in range(i + 1, N):
            both = ~term[i] & ~term[j]
            differ = both & ~np.isclose(P[i], P[j]).all(axis=(1, 2))
            if differ.any():
                raise ValueError(
                    f"tasks {i} and {j} move differently from cell {int(np.flatnonzero(differ)[0])}, "
                    "where both run"
                )
    full = (1 << N) - 1
    bits = (np.arange(1 << N)[:, None] >> np.arange(N)) & 1  # (M, N)
    # arriving in cell t with running tasks m leaves after[m, t]; pays pay[m, t]
    ends = (term.T.astype(np.int64) << np.arange(N)).sum(axis=1)  # (S,) tasks that end in t
    after = np.arange(1 << N)[:, None] & ~ends[None]  # (M, S)
    pay = bits @ rew  # (M, S)
    V = np.zeros((1 << N, S))
    Q = np.zeros((1 << N, S, A))
    for m in sorted(range(1, 1 << N), key=lambda m: bin(m).count("1")):  # smaller masks first
        Pm = P[int(np.flatnonzero(bits[m])[0])]  # running tasks move alike where they all run
        stays = after[m] == m
        fixed = np.where(stays, 0.0, V[after[m], np.arange(S)])
        v = np.zeros(S)
        for _ in range(100_000):
            q = np.einsum("sat,t->sa", Pm, pay[m] + gamma * np.where(stays, v, fixed))
            new = q.max(axis=1)
            done = np.abs(new - v).max() <= 1e-13
            v = new
            if done:
                break
        V[m], Q[m] = v, q
    bound = float(start @ V[full])
    deterministic = bool(np.all((P == 0) | (P == 1))) and np.count_nonzero(start) == 1
    if not deterministic:
        return SharedOptimum(bound, None, False, None, [], 0)
    # (S, A): the move from each cell, read from a task for which the cell is not terminal (tasks
    # move alike there, checked; a task's own terminal rows are self-loops)
    mover = np.argmin(term, axis=0)  # first task running in the cell (any task if none is)
    succ = P[mover, np.arange(S)].argmax(axis=2)
    s0 = int(np.flatnonzero(start)[0])
    floor = 0.0 if incumbent is None else float(incumbent)
    best = [floor, [s0]]  # standing still from the start is worth 0
    # a quick incumbent: goal-to-goal shortest routes in every order (prunes the search far more)
    for route in [_greedy_route(s0, full, Q, succ, after), *_goal_routes(succ, s0, term, rew)]:
        v = _route_value(route, after, pay, full, gamma)
        if v > best[0] + 1e-12:
            best[0], best[1] = v, route
    nodes = 0
    complete = True
    order = np.argsort(-Q, axis=2)  # (M, S, A) children, most promising first
    route, visited = [s0], {s0}

    def search(s: int, m: int, value: float, disc: float) -> None:
        nonlocal nodes, complete
        nodes += 1
        if value > best[0] + 1e-12:
            best[0], best[1] = value, list(route)
        if nodes >= max_nodes:
            complete = False
            return
        for a in order[m, s]:
            if value + disc * Q[m, s, a] <= best[0] + 1e-12:
                break  # children are in decreasing bound order
            t = int(succ[s, a])
            if t in visited:
                continue  # a loop: worth `value`, already counted
            m2 = int(after[m, t])
            route.append(t)
            visited.add(t)
            gain = value + disc * pay[m, t]
            if m2:
                search(t, m2, gain, disc * gamma)
            else:
                nodes += 1
                if gain > best[0] + 1e-12:
                    best[0], best[1] = gain, list(route)
            route.pop()
            visited.discard(t)

    import sys

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 4 * S + 100))
    try:
        search(s0, full, 0.0, 1.0)
    finally:
        sys.setrecursionlimit(limit)
    path = best[1]
    if incumbent is not None and len(path) == 1:
        return SharedOptimum(bound, None, complete, None, [], nodes)
    policy = np.zeros((S, A))
    policy[:, 0] = 1.0
    for c, nxt in zip(path[:-1], path[1:]):
        policy[c] = np.eye(A)[int(np.flatnonzero(succ[c] == nxt)[0])]
    _park(policy, path, succ)
    return SharedOptimum(bound, float(best[0]), complete, policy, path, nodes)


def _greedy_route(s0: int, full: int, Q: np.ndarray, succ: np.ndarray, after: np.ndarray) -> list[int]:
    """Follow the bound's best action among those that do not revisit a cell (a quick incumbent)."""
    route, seen, m, s = [s0], {s0}, full, s0
    while m:
        nxt = [(Q[m, s, a], int(succ[s, a])) for a in range(Q.shape[2]) if int(succ[s, a]) not in seen]
        if not nxt:
            break
        _, s = max(nxt)
        route.append(s)
        seen.add(s)
        m = int(after[m, s])
    return route


def _route_value(route: list[int], after: np.ndarray, pay: np.ndarray, full: int, gamma: float) -> float:
    """sum_i V_i of following a self-avoiding route from its first cell (then a loop worth 0)."""
    m, v, disc = full, 0.0, 1.0
    for t in route[1:]:
        v += disc * pay[m, t]
        m = int(after[m, t])
        disc *= gamma
        if not m:
            break
    return v


def _goal_routes(
    succ: np.ndarray, s0: int, term: np.ndarray, rew: np.ndarray, limit: int = 5000, shuffles: int = 4
):
    """Self-avoiding routes that visit goals in every order of up to all tasks (at most ``limit``
    orders): breadth-first from goal to goal, avoiding used cells, the obstacles of running tasks
    and the goals of running tasks not yet due. Orders of all tasks are also routed ``shuffles``
    more times with each cell's moves tried in a random order (fixed seed): which of several
    shortest segments is taken decides whether the later ones still exist."""
    from itertools import permutations

    N = len(term)
    goal = [set(np.flatnonzero(term[i] & (rew[i] > 0)).tolist()) for i in range(N)]
    obst = [set(np.flatnonzero(term[i] & (rew[i] < 0)).tolist()) for i in range(N)]
    rng = np.random.default_rng(0)
    count = 0
    for k in range(N, 0, -1):
        for order in permutations(range(N), k):
            for rep in range(1 + (shuffles if k == N else 0)):
                count += 1
                if count > limit:
                    return
                moves = succ if rep == 0 else np.take_along_axis(succ, rng.permuted(
                    np.tile(np.arange(succ.shape[1]), (len(succ), 1)), axis=1), axis=1)  # fmt: skip
                yield _route_in_order(order, moves, s0, goal, obst)


def _route_in_order(order, moves: np.ndarray, s0: int, goal: list[set], obst: list[set]) -> list[int]:
    """The route through the goals of ``order`` (shortest segments; stops where one is cut off)."""
    from collections import deque

    N = len(goal)
    route, used = [s0], {s0}
    for n, i in enumerate(order):
        running = [j for j in range(N) if j not in order[:n]]
        blocked = used | set().union(*(obst[j] for j in running))
        blocked |= set().union(*(goal[j] for j in running if j != i))
        prev, q, end = {route[-1]: -1}, deque([route[-1]]), None
        while q and end is None:
            c = q.popleft()
            for nx in moves[c]:
                nx = int(nx)
                if nx in prev or (nx in blocked and nx not in goal[i]):
                    continue
                prev[nx] = c
                if nx in goal[i]:
                    end = nx
                    break
                q.append(nx)
        if end is None:
            break
        seg = [end]
        while prev[seg[-1]] != -1:
            seg.append(prev[seg[-1]])
        route += seg[::-1][1:]
        used |= set(seg)
    return route


def _park(policy: np.ndarray, path: list[int], succ: np.ndarray) -> None:
    """At the route's end (tasks may still run), move back into the route: a loop worth 0."""
    last = path[-1]
    on_route = set(path)
    for a in range(policy.shape[1]):
        if int(succ[last, a]) in on_route and int(succ[last, a]) != (path[-2] if len(path) > 1 else -1):
            policy[last] = np.eye(policy.shape[1])[a]
            return
    for a in range(policy.shape[1]):
        if int(succ[last, a]) in on_route:
            policy[last] = np.eye(policy.shape[1])[a]
            return
