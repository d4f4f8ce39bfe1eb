"""Torch softmax policies: one network per agent, logits -> softmax (needs torch).

The default network is paper 003 App. G's: input the one-hot global state (``obs_mode="onehot"``,
2^N inputs on the coordination game), two fully connected hidden layers of width S, a linear layer
to |A_i| logits, softmax. The paper does not name the hidden activation; ReLU is the default. Its
parameters start N(0, 1), as the paper's text says (``init="normal"``); ``"uniform"`` also zeroes
the last layer (the uniform policy); ``"torch"`` is PyTorch's default for ``nn.Linear`` (weights and
biases uniform on +-1/sqrt(fan_in)). With N(0, 1) weights a layer multiplies the logits' scale by
about sqrt(fan_in / 2), so on the coordination game with N = 5 most rows of the initial policy are
near-deterministic; PyTorch's default keeps them near uniform.

Probabilities are computed in float64 from the logits, so a tabulated network passes
:func:`mpg_envs.exact.check_policy` at its float64 tolerance whatever the network's dtype.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from baselines.policies.base import Policy, _sizes, check_dynamics, observe_all
from mpg_envs import _validate as V
from mpg_envs.core import Dynamics

__all__ = ["TorchSoftmaxPolicy", "parse_hidden"]

ACTIVATIONS = ("relu", "tanh")
#: Initialisations of :meth:`TorchSoftmaxPolicy.mlp`.
INITS = ("normal", "uniform", "torch")


def parse_hidden(spec: str | Sequence[int], n_states: int) -> tuple[int, ...]:
    """Hidden widths from ``"auto"`` (S, S: paper 003), ``""`` (none: a linear softmax) or
    ``"64,64"``.

    Raises:
        ValueError: Anything else, naming it.
    """
    if isinstance(spec, str):
        if spec == "auto":
            return (n_states, n_states)
        if spec.strip() == "":
            return ()
        try:
            widths = tuple(int(x) for x in spec.split(","))
        except ValueError:
            raise ValueError(
                f"hidden must be 'auto', '' or comma-separated widths like '64,64', got {spec!r}"
            ) from None
    else:
        widths = tuple(spec)
    if any(isinstance(w, bool) or not isinstance(w, (int, np.integer)) or w < 1 for w in widths):
        raise ValueError(f"hidden widths must be positive integers, got {spec!r}")
    return tuple(int(w) for w in widths)


class TorchSoftmaxPolicy(Policy):
    """One torch network per agent; agent i's policy is ``softmax(nets[i](obs))``.

    Args:
        nets: N ``torch.nn.Module`` mapping (B, F) observations to (B, |A_i|) logits.
        action_sizes: (|A_1|, ..., |A_N|), the dynamics' own.
        obs_mode: A feature mode, ``"onehot"`` or ``"vector"``.
        dynamics: The env's dynamics (tabulation observes every model state through it).

    Raises:
        ValueError: Not modules, another game's action counts, or a network that does not map one
            observation of ``dynamics`` (width F) to |A_i| logits -- checked on one observation.

    Attributes:
        nets: The networks (a ``torch.nn.ModuleList``).
    """

    def __init__(
        self, nets: Sequence[Any], action_sizes: Sequence[int], obs_mode: str, dynamics: Dynamics
    ) -> None:
        import torch

        from baselines.threads import torch_threads

        torch_threads()  # small networks: one thread unless the user chose (baselines.threads)
        if obs_mode not in ("onehot", "vector"):
            raise ValueError(
                f"a network reads a feature observation ('onehot' or 'vector'), got {obs_mode!r}"
            )
        dynamics = check_dynamics(dynamics)
        dynamics.check_observation_mode(obs_mode, "obs_mode")
        if not isinstance(nets, (list, tuple, torch.nn.ModuleList)) or not all(
            isinstance(n, torch.nn.Module) for n in nets
        ):
            raise V.ArgumentTypeError(
                f"nets must be a list of torch.nn.Module, one per agent, got {V.show(nets)}"
            )
        self.nets = torch.nn.ModuleList(nets)
        self.action_sizes = _sizes(action_sizes)
        if len(self.nets) != len(self.action_sizes):
            raise ValueError(
                f"one network per agent: {len(self.nets)} networks, {len(self.action_sizes)} agents"
            )
        self.obs_mode = obs_mode
        self.dynamics = dynamics
        self.check_game(dynamics)
        self._all_obs: np.ndarray | None = None
        if not any(True for _ in self.nets.parameters()):
            raise ValueError("the networks have no parameters (nothing to train or to take a dtype from)")
        self._check_nets()

    def _check_nets(self) -> None:
        """Every network maps one observation of the dynamics to |A_i| logits (a probe on one
        initial state), else a ValueError naming the agent, the widths and the output count."""
        import torch

        dyn = self.dynamics
        state = dyn.initial_distribution()[0][:1]
        obs = dyn.observe(state, self.obs_mode)  # (1, N, F)
        width = int(np.prod(obs.shape[2:]))
        for i, k in enumerate(self.action_sizes):
            try:
                with torch.inference_mode():
                    out = self.nets[i](self._tensor(obs[:, i]))
            except RuntimeError as err:
                raise ValueError(
                    f"network of agent {i} cannot read the {self.obs_mode!r} observation of this env "
                    f"(width {width}): {str(err).splitlines()[0]}"
                ) from None
            if not isinstance(out, torch.Tensor) or tuple(out.shape) != (1, k):
                shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                raise ValueError(
                    f"network of agent {i} gives {shape} for one observation; agent {i} has {k} actions, "
                    f"so it must give (1, {k}) logits (one output per action)"
                )

    @classmethod
    def mlp(
        cls,
        dynamics: Dynamics,
        obs_mode: str = "onehot",
        hidden: str | Sequence[int] = "auto",
        activation: str = "relu",
        bias: bool = True,
        init: str = "normal",
        dtype: str = "float32",
        rng: np.random.Generator | None = None,
    ) -> TorchSoftmaxPolicy:
        """Paper 003's network per agent (see the module docstring).

        Args:
            dynamics: The env's dynamics (input size, action sizes).
            obs_mode: ``"onehot"`` (the global state, one-hot; paper 003) or ``"vector"``.
            hidden: Hidden widths (:func:`parse_hidden`).
            activation: ``"relu"`` or ``"tanh"``.
            bias: Whether the layers have biases.
            init: ``"normal"``: every parameter N(0, 1) (paper 003's text); ``"uniform"``: N(0, 1)
                and a zero last layer, so the policy starts uniform; ``"torch"``: PyTorch's default
                for ``nn.Linear``, weights and biases U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
            dtype: ``"float32"`` or ``"float64"``.
            rng: Seeds the initial parameters (a fresh torch generator; the global torch RNG is
                never used).
        """
        import torch

        dynamics = check_dynamics(dynamics)
        dynamics.check_observation_mode(obs_mode, "obs_mode")
        rng = V.generator(rng)
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {list(ACTIVATIONS)}, got {activation!r}")
        if init not in INITS:
            raise ValueError(f"init must be one of {list(INITS)}, got {init!r}")
        if dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
        if not isinstance(bias, bool):
            raise ValueError(f"bias must be true or false, got {bias!r}")
        tdtype = getattr(torch, dtype)
        in_dim = int(np.prod(dynamics.observation_shape(obs_mode)))
        widths = parse_hidden(hidden, dynamics.n_states)
        itemsize = 4 if dtype == "float32" else 8
        n_params = 0
        for k in dynamics.action_sizes:
            dims = [in_dim, *widths, int(k)]
            n_params += sum(a * b + (b if bias else 0) for a, b in zip(dims[:-1], dims[1:]))
        S = int(dynamics.n_states)
        V.check_bytes(
            f"networks of {n_params:,} parameters (hidden {V.show(widths)}, input {in_dim:,}) and their "
            f"pass over S={S:,} states",
            # parameters, gradients, two Adam moments; activations of a pass over every state
            4 * itemsize * n_params + 3 * 8 * S * (in_dim + sum(widths)) * len(dynamics.action_sizes),
            advice="use smaller hidden widths",
        )
        gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
        act = torch.nn.ReLU if activation == "relu" else torch.nn.Tanh
        nets = []
        for k in dynamics.action_sizes:
            layers: list[Any] = []
            prev = in_dim
            for w in widths:
                layers += [torch.nn.Linear(prev, w, bias=bias, dtype=tdtype), act()]
                prev = w
            layers.append(torch.nn.Linear(prev, k, bias=bias, dtype=tdtype))
            net = torch.nn.Sequential(*layers)
            with torch.no_grad():
                for layer in net:
                    if not isinstance(layer, torch.nn.Linear):
                        continue
                    bound = 1.0 / np.sqrt(layer.in_features)
                    for p in layer.parameters():
                        if init == "torch":  # nn.Linear.reset_parameters, on our generator
                            p.uniform_(-bound, bound, generator=gen)
                        else:
                            p.copy_(torch.randn(p.shape, generator=gen, dtype=tdtype))
                if init == "uniform":
                    for p in layers[-1].parameters():
                        p.zero_()
            nets.append(net)
        return cls(nets, dynamics.action_sizes, obs_mode, dynamics)

    # ------------------------------------------------------------------ evaluation
    def _check_joint_obs(self, obs: Any, rows: int | None = None) -> np.ndarray:
        arr = super()._check_joint_obs(obs, rows)
        shape = self.dynamics.observation_shape(self.obs_mode)
        if arr.shape[2:] != shape:
            raise ValueError(
                f"observations of shape {arr.shape}; this policy's networks read "
                f"({'S' if rows is not None else 'B'}, N, {', '.join(map(str, shape))})"
            )
        return arr

    def _tensor(self, obs: np.ndarray):
        import torch

        dtype = next(self.nets[0].parameters()).dtype
        return torch.as_tensor(np.asarray(obs).reshape(len(obs), -1), dtype=dtype)

    def torch_logits(self, agent: int, obs: np.ndarray):
        """Agent ``agent``'s logits as a differentiable float64 tensor (B, |A_i|)."""
        return self.nets[self._check_agent(agent)](self._tensor(obs)).double()

    def torch_probs(self, agent: int, obs: np.ndarray):
        """Agent ``agent``'s probabilities as a differentiable float64 tensor (B, |A_i|)."""
        import torch

        return torch.softmax(self.torch_logits(agent, obs), dim=1)

    def probs(self, agent: int, obs: np.ndarray) -> np.ndarray:
        import torch

        arr = np.asarray(obs)
        if arr.dtype.kind in "fc" and not np.isfinite(arr).all():
            raise ValueError(f"obs must be finite observations, got {V.show(obs)}")
        with torch.inference_mode():
            return self.torch_probs(agent, obs).numpy()

    def all_observations(self) -> np.ndarray:
        """Every model state's observation, (S, N, F) (computed once)."""
        if self._all_obs is None:
            self._all_obs = observe_all(self.dynamics, self.obs_mode)
        return self._all_obs

    def torch_tables(self, log: bool = False) -> list[Any]:
        """The tables (S, |A_i|) as differentiable float64 tensors (exact gradients flow through).

        Args:
            log: Also return the log-probabilities (log-softmax of the logits: finite where a
                probability underflows to 0), as a second list.
        """
        import torch

        obs = self.all_observations()
        logits = [self.torch_logits(i, obs[:, i]) for i in range(self.n_agents)]
        tables = [torch.softmax(z, dim=1) for z in logits]  # float64
        if log:
            return tables, [torch.log_softmax(z, dim=1) for z in logits]
        return tables

    def table(self, dynamics: Dynamics, observations: np.ndarray | None = None) -> list[np.ndarray]:
        import torch

        dyn = self.check_game(dynamics)
        theirs, ours = dyn.observation_shape(self.obs_mode), self.dynamics.observation_shape(self.obs_mode)
        if theirs != ours:
            raise ValueError(
                f"dynamics whose {self.obs_mode!r} observation has shape {theirs}; this policy's networks "
                f"read {ours} (another env's dynamics?)"
            )
        obs = self.all_observations() if observations is None and dyn is self.dynamics else observations
        if obs is None:
            obs = observe_all(dyn, self.obs_mode)
        obs = self._check_joint_obs(obs, rows=dyn.n_states)
        with torch.inference_mode():
            return [self.torch_probs(i, obs[:, i]).numpy() for i in range(self.n_agents)]

    # ------------------------------------------------------------------ parameters
    def parameters(self):
        """Every agent's parameters (for a torch optimiser)."""
        return self.nets.parameters()

    def state_dict(self) -> dict[str, Any]:
        return {f"agent{i}.{k}": v.detach().cpu().numpy().copy()
                for i, net in enumerate(self.nets) for k, v in net.state_dict().items()}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (every key, of the current shapes).

        Raises:
            ValueError: Missing or unexpected keys, or another shape.
        """
        import torch

        if not isinstance(state, dict):
            raise V.ArgumentTypeError(f"state must be a dict from state_dict(), got {V.show(state)}")
        expected = self.state_dict()
        missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
        if missing or extra:
            raise ValueError(f"state does not fit the networks: missing keys {missing}, unexpected {extra}")
        for k, v in expected.items():
            if np.shape(state[k]) != v.shape:
                raise ValueError(f"state[{k!r}] has shape {np.shape(state[k])}; the network needs {v.shape}")
        for i, net in enumerate(self.nets):
            own = {
                k.split(".", 1)[1]: torch.as_tensor(np.asarray(v))
                for k, v in state.items()
                if k.startswith(f"agent{i}.")
            }
            net.load_state_dict(own)
