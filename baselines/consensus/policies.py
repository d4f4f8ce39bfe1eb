"""The policy classes DCPG trains: tabular softmax logits and a neural network on task features.

A policy class maps one agent's parameters to logits in every task, ``logits(thetas, tasks) ->
(K, T, S, A)``, and back-propagates a linear functional of those logits, ``vjp(thetas, tasks, G) =
d/dtheta sum_{t,s,a} G[t, s, a] logits[t, s, a]`` -- all that the exact gradient, the Monte Carlo
estimators and the metrics need: the exact gradient of ``V_i`` w.r.t. the logits (paper 004 eq. 8,
:meth:`TaskSet.gradient`) is one ``vjp`` away from the gradient w.r.t. any parameters.

* :class:`Tabular`: ``theta`` (S, A) *is* the logits, the same in every task (paper 004 §5.1).
* :class:`MLP`: a fully connected network on per-task features of the agent's cell
  (:func:`task_features`): ``"local"``, an egocentric window around the cell showing the task's
  goals, obstacles and the grid's edges/walls, plus the normalised (row, col) -- what a network must
  generalise over, as paper 004 §5.2's camera images -- or ``"onehot"`` (the cell). Parameters are
  one flat float64 vector per agent (``d`` = :attr:`MLP.size`), so that the consensus step mixes
  (n, d) arrays like tabular logits; the forward pass is batched over agents (``torch.baddbmm``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mpg_envs import _validate as V

__all__ = ["FEATURES", "task_features", "Tabular", "MLP", "make_policy_class"]

FEATURES = ("local", "onehot")


def _task_list(tasks) -> list:
    """A non-empty list of multi-task GridWorld ``Task`` objects of one grid shape."""
    from mpg_envs.gridworld.tasks import Task

    what = "a non-empty sequence of MultiTaskGridWorld tasks (env.unwrapped.tasks)"
    if tasks is None or isinstance(tasks, (str, bytes, Task)) or not isinstance(tasks, Sequence):
        raise V.ArgumentTypeError(f"tasks must be {what}, got {V.show(tasks)}")
    tasks = list(tasks)
    bad = next((t for t in tasks if not isinstance(t, Task)), None)
    if not tasks or bad is not None:
        raise V.ArgumentTypeError(f"tasks must be {what}, got {V.show(tasks)}")
    shapes = {(t.shape, t.n_cells, t.n_actions) for t in tasks}
    if len(shapes) > 1:
        raise ValueError(f"tasks must share one grid (shape, cells, actions), got {sorted(shapes)}")
    return tasks


def _params(name: str, value, shape: tuple[int, ...], what: str) -> np.ndarray:
    """Stacked parameters (K, *shape) as float64 (non-finite values pass: they mean divergence)."""
    arr = V.real_array(name, value, finite=False, what=f"{what} of shape (K, {', '.join(map(str, shape))})")
    if arr.ndim != 1 + len(shape) or arr.shape[1:] != tuple(shape):
        raise ValueError(
            f"{name} must be {what} of shape (K, {', '.join(map(str, shape))}), got shape {arr.shape}"
        )
    return arr


def _indices(name: str, value, n: int | None, k: int | None = None) -> np.ndarray:
    """Task indices (T,) in [0, n) (``n`` None: >= 0), of length ``k`` if given."""
    rng = f"[0, {n})" if n is not None else ">= 0"
    t = V.int_array(name, value, what=f"task indices {rng}")
    if t.ndim != 1 or (k is not None and len(t) != k):
        raise ValueError(f"{name} must be {k if k is not None else 'a 1-d array of'} task indices {rng}, "
                         f"got shape {t.shape}")  # fmt: skip
    if len(t) and (t.min() < 0 or (n is not None and t.max() >= n)):
        raise ValueError(f"{name} must be task indices {rng}, got {V.show(t.tolist())}")
    return t


def _cotangent(G, shape: tuple[int, ...]) -> np.ndarray:
    G = V.real_array("G", G, finite=False, what=f"an array of shape {shape}")
    if G.shape != tuple(shape):
        raise ValueError(f"G must have the logits' shape {tuple(shape)}, got {G.shape}")
    return G


def _initial_args(init, seed) -> None:
    V.one_of("init", init, ("zeros", "normal"))
    V.integer("seed", seed, minimum=0)


def task_features(tasks: Sequence, mode: str = "local", radius: int = 2) -> np.ndarray:
    """What a network sees in every cell of every task.

    Args:
        tasks: ``MultiTaskGridWorldEnv.tasks`` (same grid shape).
        mode: ``"local"``: channels goal / obstacle / off-grid-or-wall of the (2r+1)^2 window centred
            on the cell (row-major, the cell in the middle), then row / (H - 1) and col / (W - 1);
            ``"onehot"``: the cell, one-hot.
        radius: r >= 1 of the local window.

    Returns:
        Features, shape (N, S, F) float64, with F = 3 (2r+1)^2 + 2 (local) or S (onehot).
    """
    V.one_of("features", mode, FEATURES)
    tasks = _task_list(tasks)
    r = V.positive_int("radius", radius)
    S = tasks[0].n_cells
    side = 2 * r + 1
    F = S if mode == "onehot" else 3 * side * side + 2
    V.check_bytes(
        f"the task features of shape (N, S, F) = ({len(tasks)}, {S:,}, {F:,})",
        len(tasks) * S * F * 8 + (0 if mode == "onehot" else 8 * S * side * side * 8),
        advice="use a smaller radius (view)",
    )
    if mode == "onehot":
        return np.repeat(np.eye(S)[None], len(tasks), axis=0)
    H, W = tasks[0].shape
    dr, dc = np.meshgrid(np.arange(-r, r + 1), np.arange(-r, r + 1), indexing="ij")
    rows, cols = np.divmod(np.arange(S), W)
    rr, cc = rows[:, None] + dr.ravel(), cols[:, None] + dc.ravel()  # (S, (2r+1)^2)
    inside = (rr >= 0) & (rr < H) & (cc >= 0) & (cc < W)
    idx = np.where(inside, rr * W + cc, 0)
    out = []
    for t in tasks:
        goal = np.zeros(S, bool)
        goal[t.goals] = True
        obst = np.zeros(S, bool)
        obst[t.obstacles] = True
        chans = [goal[idx] & inside, obst[idx] & inside, ~inside | (t.walls[idx] & inside)]
        pos = np.stack([rows / max(H - 1, 1), cols / max(W - 1, 1)], axis=1)
        out.append(np.concatenate([c.astype(np.float64) for c in chans] + [pos], axis=1))
    return np.stack(out)


class Tabular:
    """Softmax logits per cell, shared by every task: ``theta`` has shape (S, A)."""

    def __init__(self, n_states: int, n_actions: int) -> None:
        self.shape = (V.positive_int("n_states", n_states), V.positive_int("n_actions", n_actions))

    def initial(self, init: str, seed: int) -> np.ndarray:
        """``zeros`` (uniform policy) or ``normal`` (N(0, 1) logits), shape (S, A)."""
        _initial_args(init, seed)
        if init == "zeros":
            return np.zeros(self.shape)
        return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(1 << 30,))).normal(
            size=self.shape
        )

    def logits(self, thetas: np.ndarray, tasks: np.ndarray) -> np.ndarray:
        """(K, S, A), (T,) -> (K, T, S, A): the same logits in every task."""
        thetas = _params("thetas", thetas, self.shape, "tabular logits")
        tasks = _indices("tasks", tasks, None)
        return np.repeat(thetas[:, None], len(tasks), axis=1)

    def vjp(self, thetas: np.ndarray, tasks: np.ndarray, G: np.ndarray) -> np.ndarray:
        """(K, S, A), (T,), (K, T, S, A) -> (K, S, A)."""
        thetas = _params("thetas", thetas, self.shape, "tabular logits")
        tasks = _indices("tasks", tasks, None)
        return _cotangent(G, (len(thetas), len(tasks), *self.shape)).sum(axis=1)

    def own_logits(self, thetas: np.ndarray, tasks: np.ndarray) -> np.ndarray:
        """Agent k's logits in its own task ``tasks[k]``: (n, S, A), (n,) -> (n, S, A)."""
        thetas = _params("thetas", thetas, self.shape, "tabular logits")
        _indices("tasks", tasks, None, len(thetas))
        return thetas

    def own_vjp(self, thetas: np.ndarray, tasks: np.ndarray, G: np.ndarray) -> np.ndarray:
        """(n, S, A), (n,), (n, S, A) -> (n, S, A)."""
        thetas = _params("thetas", thetas, self.shape, "tabular logits")
        _indices("tasks", tasks, None, len(thetas))
        return _cotangent(G, thetas.shape)


class MLP:
    """A fully connected softmax policy on task features, one flat parameter vector per agent.

    Args:
        features: Every task's features, shape (N, S, F) (:func:`task_features`).
        n_actions: A.
        hidden: Hidden widths (tanh).
    """

    def __init__(self, features: np.ndarray, n_actions: int, hidden: Sequence[int]) -> None:
        import torch

        from baselines.policies.neural import parse_hidden
        from baselines.threads import torch_threads

        features = V.real_array("features", features, ndim=3, what="task features of shape (N, S, F)")
        N, S, F = features.shape
        if min(N, S, F) < 1:
            raise ValueError(f"features must have shape (N, S, F) with N, S, F >= 1, got {features.shape}")
        n_actions = V.positive_int("n_actions", n_actions)
        if isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence):
            raise V.ArgumentTypeError(f"hidden must be a sequence of widths, got {V.show(hidden)}")
        hidden = parse_hidden(hidden, S)
        sizes = [F, *hidden, n_actions]
        d = sum(fi * fo + fo for fi, fo in zip(sizes[:-1], sizes[1:]))
        V.check_bytes(f"a network of {d:,} parameters (widths {sizes})", 8 * d, advice="use smaller widths")
        torch_threads()  # small networks: one thread unless the user chose (baselines.threads)
        self.torch = torch
        self.features = torch.as_tensor(features, dtype=torch.float64)
        self.n_tasks = N
        self.n_states, self.n_actions = S, n_actions
        self.sizes = [F, *hidden, n_actions]
        self.layers = []  # (offset of W, offset of b, fan_in, fan_out)
        off = 0
        for fi, fo in zip(self.sizes[:-1], self.sizes[1:]):
            self.layers.append((off, off + fi * fo, fi, fo))
            off += fi * fo + fo
        self.size = off
        self.shape = (off,)

    def initial(self, init: str, seed: int) -> np.ndarray:
        """PyTorch's default ``U(+-1/sqrt(fan_in))`` weights and biases; ``zeros`` zeroes the
        output layer (the uniform policy), ``normal`` keeps it. Shape (d,)."""
        _initial_args(init, seed)
        rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(1 << 30,)))
        theta = np.empty(self.size)
        for k, (w, b, fi, fo) in enumerate(self.layers):
            bound = 1.0 / np.sqrt(fi)
            theta[w : b + fo] = rng.uniform(-bound, bound, size=fi * fo + fo)
            if init == "zeros" and k == len(self.layers) - 1:
                theta[w : b + fo] = 0.0
        return theta

    def forward(self, theta, x):
        """Logits of parameters (K, d) on inputs (K, M, F) -> (K, M, A) (torch, differentiable)."""
        torch = self.torch
        h = x
        for k, (w, b, fi, fo) in enumerate(self.layers):
            Wk = theta[:, w:b].reshape(-1, fi, fo)
            h = torch.baddbmm(theta[:, b : b + fo].unsqueeze(1), h, Wk)
            if k < len(self.layers) - 1:
                h = torch.tanh(h)
        return h

    def _inputs(self, tasks: np.ndarray, K: int):
        x = self.features[self.torch.as_tensor(np.asarray(tasks))]  # (T, S, F)
        return x.reshape(1, -1, x.shape[-1]).expand(K, -1, -1)

    def logits(self, thetas: np.ndarray, tasks: np.ndarray) -> np.ndarray:
        """(K, d), (T,) -> (K, T, S, A)."""
        torch = self.torch
        thetas = _params("thetas", thetas, self.shape, "network parameters")
        tasks = _indices("tasks", tasks, self.n_tasks)
        K, T = len(thetas), len(tasks)
        with torch.no_grad():
            out = self.forward(torch.as_tensor(thetas), self._inputs(tasks, K))
        return out.numpy().reshape(K, T, self.n_states, self.n_actions)

    def vjp(self, thetas: np.ndarray, tasks: np.ndarray, G: np.ndarray) -> np.ndarray:
        """(K, d), (T,), (K, T, S, A) -> (K, d)."""
        torch = self.torch
        thetas = _params("thetas", thetas, self.shape, "network parameters")
        tasks = _indices("tasks", tasks, self.n_tasks)
        G = _cotangent(G, (len(thetas), len(tasks), self.n_states, self.n_actions))
        th = torch.as_tensor(thetas).clone().requires_grad_(True)
        out = self.forward(th, self._inputs(tasks, len(thetas)))
        (g,) = torch.autograd.grad(out, th, torch.as_tensor(G).reshape(out.shape))
        return g.numpy()

    def own_inputs(self, tasks: np.ndarray):
        """Each agent's own task's features: (n,) -> (n, S, F) torch."""
        return self.features[self.torch.as_tensor(np.asarray(tasks))]

    def own_logits(self, thetas: np.ndarray, tasks: np.ndarray) -> np.ndarray:
        """(n, d), (n,) -> (n, S, A)."""
        thetas = _params("thetas", thetas, self.shape, "network parameters")
        tasks = _indices("tasks", tasks, self.n_tasks, len(thetas))
        with self.torch.no_grad():
            return self.forward(self.torch.as_tensor(thetas), self.own_inputs(tasks)).numpy()

    def own_vjp(self, thetas: np.ndarray, tasks: np.ndarray, G: np.ndarray) -> np.ndarray:
        """(n, d), (n,), (n, S, A) -> (n, d)."""
        torch = self.torch
        thetas = _params("thetas", thetas, self.shape, "network parameters")
        tasks = _indices("tasks", tasks, self.n_tasks, len(thetas))
        G = _cotangent(G, (len(thetas), self.n_states, self.n_actions))
        th = torch.as_tensor(thetas).clone().requires_grad_(True)
        out = self.forward(th, self.own_inputs(tasks))
        (g,) = torch.autograd.grad(out, th, torch.as_tensor(G))
        return g.numpy()


def make_policy_class(cfg, tasks: Sequence) -> Tabular | MLP:
    """The policy class of a DCPG config (``policy``, ``features``, ``view``, ``hidden``)."""
    for name in ("policy", "features", "view", "hidden"):
        if not hasattr(cfg, name):
            raise V.ArgumentTypeError(f"cfg must be a DCPGConfig, got {V.show(cfg)} (no {name!r})")
    V.one_of("policy", cfg.policy, ("tabular", "mlp"))
    tasks = _task_list(tasks)
    S, A = tasks[0].n_cells, tasks[0].n_actions
    if cfg.policy == "tabular":
        return Tabular(S, A)
    from baselines.policies.neural import parse_hidden

    return MLP(task_features(tasks, cfg.features, cfg.view), A, parse_hidden(cfg.hidden, S))
