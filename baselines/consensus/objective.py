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

from collections.abc import Sequence

import numpy as np

from baselines.policies.tabular import softmax_rows
from mpg_envs.exact import _one_blas_thread
from mpg_envs.model import TabularModel

__all__ = ["TaskSet", "relative_entropy", "regularizer_gradient", "softmax_logits"]


def softmax_logits(theta: np.ndarray) -> np.ndarray:
    """Row softmax over the last axis of logits (..., S, A) -> probabilities (..., S, A)."""
    shape = theta.shape
    return softmax_rows(theta.reshape(-1, shape[-1])).reshape(shape)


def relative_entropy(pi: np.ndarray) -> np.ndarray:
    """Paper 004 eq. (6), ``E_{s ~ Unif} KL(U_A || pi(.|s))``, for policies (..., S, A) -> (...)."""
    S, A = pi.shape[-2:]
    with np.errstate(divide="ignore"):
        return -np.log(pi).sum(axis=(-2, -1)) / (S * A) - np.log(A)


def regularizer_gradient(pi: np.ndarray, lam: float) -> np.ndarray:
    """Gradient of ``-lam * RE(pi_theta)`` w.r.t. softmax logits: ``lam/|S| (1/|A| - pi)``, (..., S, A)."""
    S, A = pi.shape[-2:]
    return lam / S * (1.0 / A - pi)


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
        models = list(models)
        if not models or any(not isinstance(m, TabularModel) or m.n_agents != 1 for m in models):
            raise ValueError("models must be a non-empty sequence of single-agent TabularModel")
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
        self.goals = np.asarray(goals, dtype=bool)
        self.obstacles = np.asarray(obstacles, dtype=bool)
        self._eye = np.eye(S)

    @classmethod
    def from_env(cls, env) -> TaskSet:
        """From a ``MultiTaskGridWorld-v0`` env (its task models and its tasks' goals/obstacles)."""
        env = env.unwrapped
        S = env.tasks[0].n_cells
        goals = np.zeros((len(env.tasks), S), bool)
        obst = np.zeros_like(goals)
        for i, t in enumerate(env.tasks):
            goals[i, t.goals] = True
            obst[i, t.obstacles] = True
        return cls(env.task_models(), goals, obst)

    # ------------------------------------------------------------------ helpers
    def _tasks(self, tasks: np.ndarray | Sequence[int], k: int) -> np.ndarray:
        t = np.asarray(tasks, dtype=np.int64).reshape(-1)
        if t.shape != (k,) or t.min(initial=0) < 0 or t.max(initial=0) >= self.n_tasks:
            raise ValueError(
                f"tasks must be {k} indices in [0, {self.n_tasks}), got {np.asarray(tasks).tolist()}"
            )
        return t

    def _policies(self, pi: np.ndarray) -> np.ndarray:
        pi = np.asarray(pi, dtype=np.float64)
        if pi.ndim == 2:
            pi = pi[None]
        if pi.ndim != 3 or pi.shape[1:] != (self.n_states, self.n_actions):
            raise ValueError(
                f"policies must have shape (K, S, A) = (K, {self.n_states}, {self.n_actions}), got {pi.shape}"
            )
        return pi

    def transition(self, pi: np.ndarray, tasks: np.ndarray) -> np.ndarray:
        """P_pi for every (policy, task) pair: (K, S, A), (K,) -> (K, S, S)."""
        return np.einsum("ksat,ksa->kst", self.P[tasks], pi)

    # ------------------------------------------------------------------ values
    def values(self, pi: np.ndarray, tasks: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """V and Q of policies (K, S, A) in tasks (K,): shapes (K, S) and (K, S, A)."""
        pi = self._policies(pi)
        t = self._tasks(tasks, len(pi))
        r_pi = (self.R[t] * pi).sum(axis=2)
        with _one_blas_thread(self.n_states):  # small batched solves: one BLAS thread
            v = np.linalg.solve(self._eye - self.gamma * self.transition(pi, t), r_pi[..., None])[..., 0]
        q = self.R[t] + self.gamma * np.einsum("ksat,kt->ksa", self.P[t], v)
        return v, q

    def values_at_start(self, pi: np.ndarray, tasks: Sequence[int]) -> np.ndarray:
        """V_i^pi(rho_i) for policies (K, S, A) in tasks (K,): shape (K,)."""
        v, _ = self.values(pi, tasks)
        return (v * self.rho[np.asarray(tasks)]).sum(axis=1)

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
        theta = self._policies(theta)
        t = self._tasks(tasks, len(theta))
        pi = softmax_logits(theta)
        v, q = self.values(pi, t)
        mu = self.rho[t] if mu is None else np.asarray(mu, dtype=np.float64).reshape(len(t), -1)
        m = self._eye - self.gamma * self.transition(pi, t)
        with _one_blas_thread(self.n_states):
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
        pi = self._policies(pi)
        t = self._tasks(tasks, len(pi))
        p_pi = self.transition(pi, t)
        d = self.rho[t].copy()
        obst = self.obstacles[t].astype(np.float64)
        survived = np.zeros(len(t))
        for _ in range(int(horizon)):  # H vectorised steps (a distribution over cells)
            d = np.einsum("ks,kst->kt", d, p_pi)
            survived += 1.0 - (d * obst).sum(axis=1)
        return (d * self.goals[t]).sum(axis=1), survived
