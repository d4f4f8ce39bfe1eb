"""Neural softmax policy gradient (paper 003 §5.2): exact gradients through the policy's table
(NN-PG with SGD, NN-Adam), and sampled gradients (REINFORCE with a baseline). Needs torch, imported
when an algorithm is used, not when this module is.

**Exact gradient.** An :class:`~baselines.estimators.Estimate` gives ``dV_i(mu)/dpi_i(a|s) =
occupancy(s) Q_i(s, a)`` for any policy, so a network's exact gradient is one backward pass through
its tabulated policy: maximise ``sum_i sum_{s,a} [occupancy(s) Q_i(s, a)] pi_i(a|s)`` with the
bracket held fixed (paper 003 §5's formula). With a bias-free linear layer on the one-hot state the
network is a tabular softmax and :class:`NeuralPG` with SGD is exactly :class:`~baselines.algorithms.IPG`.

**REINFORCE.** Episodes come from the batched sampler of the env's dynamics with the network acting
on its observations; the gradient is that of ``mean_b sum_t gamma^t (G_t - b_t) log pi(a_t | o_t)``
with ``G_t`` the return-to-go and ``b_t`` the batch mean of ``G_t`` (the baseline; ``"none"`` drops
it). It estimates the gradient of the ``horizon``-step value; for episodes that end within the
horizon, of V itself.

The log barrier ``lambda * mean_{s,a} log pi_i(a|s)`` (paper 003 §3.2) is added to the objective
over every model state (exact) or the visited observations (REINFORCE).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, ClassVar

import numpy as np

from baselines.algorithms.base import Algorithm, check_eta, check_lambda
from baselines.estimators import Estimate, Estimator, estimate_own
from baselines.policies.neural import TorchSoftmaxPolicy, parse_hidden

__all__ = ["NeuralPG", "Reinforce"]

OPTIMIZERS = ("sgd", "adam")


def _torch():
    try:
        import torch
    except ImportError:  # pragma: no cover - the baselines extra installs torch
        raise ValueError(
            "neural policies need torch: pip install torch==2.13.0 (CPU) then pip install -e '.[baselines]'"
        ) from None
    return torch


@dataclasses.dataclass
class _NeuralBase(Algorithm):
    lr: float = dataclasses.field(default=0.1, metadata={"help": "learning rate (paper 003: 0.1)"})
    optimizer: str = dataclasses.field(default="sgd", metadata={"help": "sgd (NN-PG) or adam (NN-Adam)"})
    log_barrier: float = dataclasses.field(
        default=0.0, metadata={"help": "log-barrier weight lambda >= 0 (paper 003 §3.2)"}
    )
    hidden: str = dataclasses.field(
        default="auto", metadata={"help": "hidden widths: auto (S, S: paper 003), '' (none) or e.g. 64,64"}
    )
    activation: str = dataclasses.field(default="relu", metadata={"help": "relu or tanh"})
    bias: bool = dataclasses.field(default=True, metadata={"help": "layers with biases"})
    dtype: str = dataclasses.field(default="float32", metadata={"help": "float32 or float64"})

    policy_kind: ClassVar[str] = "neural"
    default_obs: ClassVar[str] = "onehot"

    def __post_init__(self) -> None:
        self.lr = check_eta("lr", self.lr)
        self.log_barrier = check_lambda(self.log_barrier)
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {list(OPTIMIZERS)}, got {self.optimizer!r}")
        parse_hidden(self.hidden, 1)
        if self.activation not in ("relu", "tanh"):
            raise ValueError(f"activation must be 'relu' or 'tanh', got {self.activation!r}")
        if not isinstance(self.bias, bool):
            raise ValueError(f"bias must be true or false, got {self.bias!r}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        largest = float(np.finfo(self.dtype).max)
        if self.lr > largest:  # torch cannot even apply such a step to the parameters
            raise ValueError(
                f"lr must be at most {largest:.3g} (the largest {self.dtype}) for {self.dtype} networks, "
                f"got {self.lr!r}"
            )
        self._opt = None

    def make_policy(self, dynamics, n_rows, rng, init, obs_mode):
        _torch()
        policy = TorchSoftmaxPolicy.mlp(
            dynamics, obs_mode, self.hidden, self.activation, self.bias, init, self.dtype, rng=rng
        )
        self._make_optimizer(policy)
        return policy

    def _make_optimizer(self, policy: TorchSoftmaxPolicy) -> None:
        torch = _torch()
        params = list(policy.parameters())
        self._opt = (
            torch.optim.SGD(params, lr=self.lr)
            if self.optimizer == "sgd"
            else torch.optim.Adam(params, lr=self.lr)
        )

    def _step(self, objective) -> None:
        self._opt.zero_grad()
        (-objective).backward()
        self._opt.step()

    # Adam's moments and step counts, for bit-identical resumes
    def state_dict(self) -> dict[str, Any]:
        if self._opt is None or self.optimizer == "sgd":
            return {}
        sd = self._opt.state_dict()
        out: dict[str, Any] = {"groups": np.array(json.dumps(sd["param_groups"]))}
        for idx, st in sd["state"].items():
            for k, v in st.items():
                out[f"state.{idx}.{k}"] = v.detach().cpu().numpy().copy()
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`: Adam's step counts and moments of every parameter (SGD has
        none).

        Raises:
            ValueError: Adam's state is missing (a resumed run would restart its moments and end
                differently), incomplete or of other shapes.
        """
        if self._opt is None or self.optimizer == "sgd":
            return
        torch = _torch()
        params = [p for g in self._opt.param_groups for p in g["params"]]
        if "groups" not in state:
            raise ValueError("no Adam state ('groups' and the moments of every parameter)")
        for i, p in enumerate(params):
            for name in ("step", "exp_avg", "exp_avg_sq"):
                key = f"state.{i}.{name}"
                if key not in state:
                    raise ValueError(f"Adam state without {key!r}")
                want = () if name == "step" else tuple(p.shape)
                if tuple(np.shape(state[key])) != want:
                    raise ValueError(f"Adam state {key!r} has shape {np.shape(state[key])}, not {want}")
        sd: dict[str, Any] = {"param_groups": json.loads(str(state["groups"])), "state": {}}
        for key, v in state.items():
            if key.startswith("state."):
                _, idx, name = key.split(".", 2)
                sd["state"].setdefault(int(idx), {})[name] = torch.as_tensor(np.asarray(v))
        self._opt.load_state_dict(sd)


@dataclasses.dataclass
class NeuralPG(_NeuralBase):
    """Exact-gradient policy gradient of torch softmax networks: NN-PG (``optimizer="sgd"``) and
    NN-Adam (``"adam"``) of paper 003 §5.2 (see the module docstring)."""

    name: ClassVar[str] = "nn_pg"
    help: ClassVar[str] = (
        "neural softmax PG with exact gradients through the policy's table (paper 003 NN-PG/NN-Adam)"
    )

    def update(self, policy: TorchSoftmaxPolicy, estimator: Estimator) -> Estimate:
        torch = _torch()
        if self.log_barrier > 0:
            tables_t, logs_t = policy.torch_tables(log=True)
        else:
            tables_t = policy.torch_tables()
            logs_t = [None] * len(tables_t)
        tables = [t.detach().numpy() for t in tables_t]
        est = estimate_own(estimator, tables)
        objective = 0.0
        for t, lt, g in zip(tables_t, logs_t, est.direct_gradients()):
            objective = objective + (torch.as_tensor(g) * t).sum()
            if self.log_barrier > 0:
                objective = objective + self.log_barrier * lt.mean()
        self._step(objective)
        return est


@dataclasses.dataclass
class Reinforce(_NeuralBase):
    """Sampled neural policy gradient: REINFORCE with a batch-mean baseline on the batched sampler
    (``--estimator sampled``: its ``horizon`` and ``batch``), the network acting on its observations."""

    baseline: str = dataclasses.field(
        default="mean", metadata={"help": "mean (batch mean of G_t per step) or none"}
    )
    name: ClassVar[str] = "reinforce"
    help: ClassVar[str] = "neural softmax PG from sampled episodes (REINFORCE with a baseline)"
    estimators: ClassVar[tuple[str, ...] | None] = ("sampled",)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.baseline not in ("mean", "none"):
            raise ValueError(f"baseline must be 'mean' or 'none', got {self.baseline!r}")

    def check(self, policy: TorchSoftmaxPolicy, estimator: Estimator) -> None:
        """The estimator must sample episodes (``SampledEstimator``); its batch of episodes with
        the network's observations must fit in memory."""
        if not hasattr(estimator, "sampler") or not hasattr(estimator, "batch"):
            raise ValueError(
                f"reinforce samples its own episodes: use --estimator sampled, got {type(estimator).__name__}"
            )
        estimator.sampler.check_policy_rollout(estimator.batch, estimator.horizon, policy.obs_mode)

    def update(self, policy: TorchSoftmaxPolicy, estimator: Estimator) -> Estimate:
        if not hasattr(estimator, "sampler"):
            raise ValueError("reinforce samples its own episodes: use --estimator sampled")
        self._step(self.objective(policy, estimator))
        return None  # type: ignore[return-value]

    def objective(self, policy: TorchSoftmaxPolicy, estimator) -> Any:
        """The surrogate whose gradient is the REINFORCE estimate (one fresh batch of episodes)."""
        torch = _torch()
        from baselines.sampler import returns_to_go

        ro = estimator.sampler.rollout_policy(policy, estimator.batch, estimator.horizon)
        B, T, N = ro.actions.shape
        G = returns_to_go(ro.rewards, estimator.gamma)  # (B, T, N)
        if self.baseline == "mean":
            G = G - G.mean(axis=0, keepdims=True)
        w = (estimator.gamma ** np.arange(T))[None, :, None] * G * ro.alive[:, :, None]
        live = ro.alive.reshape(-1)
        objective = 0.0
        for i in range(N):
            obs = ro.observations[:, :T, i].reshape(B * T, -1)
            logp_all = torch.log_softmax(policy.torch_logits(i, obs), dim=1)  # (B T, K)
            logp = logp_all.gather(1, torch.as_tensor(ro.actions[:, :, i].reshape(-1, 1)))[:, 0]
            objective = objective + (torch.as_tensor(w[:, :, i].reshape(-1)) * logp).sum() / B
            if self.log_barrier > 0 and live.any():
                objective = objective + self.log_barrier * logp_all[torch.as_tensor(live)].mean()
        return objective
