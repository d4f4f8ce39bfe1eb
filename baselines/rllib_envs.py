"""RLlib for every env (an optional extra in its own environment: ``ray[rllib]`` pins
``gymnasium==1.2.2``, older than the rest of the project uses).

Install (a separate virtual environment)::

    python3 -m venv .venv-rllib && . .venv-rllib/bin/activate
    pip install torch==2.13.0 && pip install -e ".[rllib]"

``make_rllib_env`` wraps one of our envs in RLlib's ``ParallelPettingZooEnv``; ``register`` makes it
available to ``PPOConfig().environment(name)``. Our envs end episodes the way that wrapper expects:
at the time limit every live agent is truncated (also one that terminates on that step), so its
``__all__`` flags are set (before, 25 of 2000 random ``no_conflict`` episodes raised on the next step).

Exact metrics while RLlib trains: :func:`exact_metrics_callback` makes an ``RLlibCallback`` class
whose ``on_train_result`` tabulates the shared RLModule on every evaluated state's observation
(:func:`module_probs` on :attr:`baselines.evaluation.ExactMetrics.observations`) every ``every``
training iterations and puts the exact metrics into the result dict as ``result["exact"]`` (Nash
gap, potential, price of anarchy, each agent's value, welfare) -- so ``algo.train()`` returns them
and Tune's loggers (TensorBoard: ``ray/tune/exact/nash_gap``, CSV, JSON) record them.
``shared_ppo_config(name, exact_every=k)`` adds it for an env made by :func:`register`.

Example::

    from baselines.rllib_envs import register, shared_ppo_config
    name = register("mpg/Coordination-v0", n_agents=2, observation="vector")
    algo = shared_ppo_config(name, train_batch_size=2048, exact_every=1).build_algo()
    print(algo.train()["exact"]["nash_gap"])
"""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np

from mpg_envs import _validate as V

__all__ = [
    "make_rllib_env",
    "register",
    "shared_ppo_config",
    "module_probs",
    "exact_metrics_callback",
]

#: What :func:`register` registered: name -> (env id, env kwargs), for ``shared_ppo_config(exact_every=)``.
_REGISTERED: dict[str, tuple[str, dict[str, Any]]] = {}
#: The exact-metrics evaluators built in this process by :func:`exact_metrics_callback`, by token
#: (a callback class shipped to another process builds its own on first use).
_EVALUATORS: dict[str, Any] = {}


def _ray():
    try:
        from ray.rllib.env.wrappers.pettingzoo_env import ParallelPettingZooEnv
        from ray.tune.registry import register_env
    except ImportError:  # pragma: no cover - an optional extra
        raise ImportError(
            "RLlib is an optional extra with its own environment (it pins gymnasium 1.2.2): "
            "python3 -m venv .venv-rllib && . .venv-rllib/bin/activate && pip install torch==2.13.0 "
            "&& pip install -e '.[rllib]'"
        ) from None
    return ParallelPettingZooEnv, register_env


def make_rllib_env(env_id: str, **env_kwargs: Any):
    """RLlib's ``ParallelPettingZooEnv`` around ``pettingzoo.make("parallel", env_id, **env_kwargs)``."""
    import pettingzoo

    import mpg_envs  # noqa: F401 - registers the envs
    from baselines.threads import torch_threads

    wrapper, _ = _ray()
    torch_threads()  # small networks: one thread unless the user chose (baselines.threads)
    return wrapper(pettingzoo.make("parallel", env_id, **env_kwargs))


def register(env_id: str, name: str | None = None, **env_kwargs: Any) -> str:
    """Register ``env_id`` (with fixed arguments) with RLlib under ``name``; returns the name."""
    _, register_env = _ray()
    name = name or env_id.replace("/", "_")
    _REGISTERED[name] = (env_id, dict(env_kwargs))
    register_env(name, lambda config: make_rllib_env(env_id, **{**env_kwargs, **dict(config)}))
    return name


def shared_ppo_config(name: str, seed: int = 0, exact_every: int | None = None, **training: Any):
    """PPO (new API stack) with one policy ``"shared"`` for every agent, sampling in this process.

    Index observations (``observation="state"`` or ``"own"``, a ``Discrete`` space that RLlib's default
    networks refuse) reach the network one-hot encoded (RLlib's ``FlattenObservations`` connector);
    feature vectors pass unchanged.

    Args:
        name: A registered env name (:func:`register`).
        seed: RLlib's seed.
        exact_every: If given, the exact metrics of the shared policy every ``exact_every`` training
            iterations in ``result["exact"]`` (:func:`exact_metrics_callback`; ``name`` must come from
            :func:`register` in this process, which knows its env and arguments).
        **training: ``PPOConfig.training`` options (e.g. ``train_batch_size=2048``).

    Raises:
        ValueError: ``exact_every`` is not a positive integer, or ``name`` was not registered by
            :func:`register` (with ``exact_every``).
    """
    _ray()
    from ray.rllib.algorithms.ppo import PPOConfig

    from baselines.threads import torch_threads

    callback = None
    if exact_every is not None:
        if name not in _REGISTERED:
            raise ValueError(
                f"exact_every needs an env registered by baselines.rllib_envs.register in this process "
                f"(it knows the env's id and arguments); {name!r} is not one of {sorted(_REGISTERED)}"
            )
        env_id, env_kwargs = _REGISTERED[name]
        callback = exact_metrics_callback(env_id, every=exact_every, **env_kwargs)
    torch_threads()  # the learner runs in this process (num_env_runners=0)

    config = (
        PPOConfig()
        .environment(name)
        .multi_agent(policies={"shared"}, policy_mapping_fn=lambda agent_id, *a, **k: "shared")
        # index observations ("state", "own": a Discrete space, which RLlib's default networks refuse)
        # become one-hot vectors; feature vectors pass unchanged
        .env_runners(num_env_runners=0, env_to_module_connector=_flatten_observations)
        .training(**training)
        .debugging(seed=seed)
    )
    return config if callback is None else config.callbacks(callback)


def _flatten_observations(env: Any = None, spaces: Any = None, device: Any = None) -> Any:
    """RLlib's ``FlattenObservations`` connector for every agent (Discrete -> one-hot)."""
    from ray.rllib.connectors.env_to_module import FlattenObservations

    return FlattenObservations(multi_agent=True)


def module_probs(module: Any, observations: Any) -> np.ndarray:
    """The action probabilities of an RLModule on every agent's observation in every state.

    Args:
        module: An RLModule (new API stack) with discrete actions, e.g. ``algo.get_module("shared")``;
            its ``forward_inference`` output's ``action_dist_inputs`` are the logits.
        observations: (S, N, ...) as the env emits them (:attr:`ExactMetrics.observations`). Index
            observations (S, N) are one-hot encoded when the module reads a flat vector of that length
            (RLlib's ``FlattenObservations`` connector does that to a ``Discrete`` space).

    Returns:
        (S, N, A) float64 probabilities (softmax of the logits).

    Raises:
        ValueError: Observations the module cannot read, or logits that are not finite.
    """
    import torch

    obs = np.asarray(observations)
    if obs.ndim < 2 or obs.shape[0] == 0 or obs.shape[1] == 0:
        raise ValueError(f"observations must have shape (S, N, ...) with S, N >= 1, got {obs.shape}")
    S, N = obs.shape[:2]
    flat = obs.reshape(S * N, *obs.shape[2:])
    space = getattr(module, "observation_space", None)
    shape = tuple(getattr(space, "shape", None) or ())
    if obs.ndim == 2 and np.issubdtype(obs.dtype, np.integer) and len(shape) == 1:
        k = shape[0]
        if flat.min() < 0 or flat.max() >= k:
            raise ValueError(
                f"index observations in [{int(flat.min())}, {int(flat.max())}] do not fit the module's "
                f"flat observation space of length {k} (one-hot)"
            )
        flat = np.eye(k, dtype=np.float32)[flat]
    elif len(shape) and flat.shape[1:] != shape:
        raise ValueError(
            f"the module reads observations of shape {shape}, the env emits {obs.shape[2:]} per agent "
            "(tabulate on the observations the module was trained on)"
        )
    with torch.no_grad():
        out = module.forward_inference({"obs": torch.from_numpy(np.array(flat))})  # a writable copy
    logits = out["action_dist_inputs"].double()
    if not bool(torch.isfinite(logits).all()):
        raise ValueError("the module's logits are not finite (diverged training?)")
    return torch.softmax(logits, dim=-1).numpy().reshape(S, N, -1)


def exact_metrics_callback(env: str, *, every: int = 1, module_id: str = "shared", **env_kwargs: Any) -> type:
    """An ``RLlibCallback`` class that logs the exact metrics of a shared policy while RLlib trains.

    Every ``every`` training iterations (``result["training_iteration"] % every == 0``) its
    ``on_train_result`` tabulates the RLModule ``module_id`` on
    :attr:`baselines.evaluation.ExactMetrics.observations` (:func:`module_probs`) and sets
    ``result["exact"]`` to the metrics (``nash_gap``, ``nash_gap_worst``, ``potential``, ``poa``,
    ``value_i``, ``welfare``): ``algo.train()`` returns them and Tune's loggers record them
    (TensorBoard tag ``ray/tune/exact/nash_gap``). The callback object also keeps them in ``rows``
    (with ``training_iteration``). Pass the class to ``config.callbacks(...)``.

    Args:
        env: The registered id RLlib trains on (e.g. ``"mpg/Coordination-v0"``).
        every: Training iterations between evaluations (1: every iteration).
        module_id: The RLModule to tabulate (``"shared"`` in :func:`shared_ppo_config`).
        **env_kwargs: The env's arguments, as given to :func:`register`.

    Raises:
        ValueError: A bad ``every`` or ``module_id``, an env without an exact model, unknown env
            arguments, or an exact model that does not fit (checked here, before training).
    """
    _ray()
    from ray.rllib.callbacks.callbacks import RLlibCallback

    from baselines.evaluation import ExactMetrics

    every = V.positive_int("every", every)
    if not isinstance(module_id, str) or not module_id:
        raise V.ArgumentTypeError(f"module_id must be a non-empty string, got {V.show(module_id)}")
    em = ExactMetrics(env, **env_kwargs)  # validates env and arguments, builds the model once
    token = uuid.uuid4().hex
    _EVALUATORS[token] = em
    spec = (env, dict(env_kwargs))

    class ExactMetricsCallback(RLlibCallback):
        """Puts the exact metrics of RLModule ``module_id`` into ``result["exact"]``."""

        def __init__(self) -> None:
            super().__init__()
            self.rows: list[dict[str, float]] = []

        @staticmethod
        def metrics_of(algorithm: Any) -> dict[str, float]:
            em = _EVALUATORS.get(token)
            if em is None:  # this class was shipped to another process
                em = _EVALUATORS[token] = ExactMetrics(spec[0], **spec[1])
            module = algorithm.get_module(module_id)
            if module is None:
                raise ValueError(
                    f"module_id {module_id!r} is not an RLModule of this algorithm; it has "
                    f"{sorted(algorithm.config.policies)}"
                )
            return em(module_probs(module, em.observations))

        def on_algorithm_init(self, *, algorithm: Any, metrics_logger: Any = None, **kwargs) -> None:
            # an env registered here (register) must be the one these metrics describe: another env
            # or other arguments would give metrics of a game the policy was not trained on
            name = algorithm.config.env
            if isinstance(name, str) and name in _REGISTERED:
                env_id, kw = _REGISTERED[name]
                trained = (env_id, {**kw, **dict(algorithm.config.env_config or {})})
                if trained != spec:
                    raise ValueError(
                        f"the exact-metrics callback describes {spec[0]} with {spec[1]}, but the algorithm "
                        f"trains on {name!r} = {trained[0]} with {trained[1]}; make the callback with the "
                        "same env and arguments (shared_ppo_config(name, exact_every=k) does)"
                    )

        def on_train_result(self, *, algorithm: Any, metrics_logger: Any = None, result: dict, **kwargs):
            it = int(result.get("training_iteration", len(self.rows) + 1))
            if it % every:
                return
            row = self.metrics_of(algorithm)
            result["exact"] = dict(row)
            self.rows.append({"training_iteration": float(it), **row})

    ExactMetricsCallback.every = every
    ExactMetricsCallback.module_id = module_id
    ExactMetricsCallback.env = spec
    return ExactMetricsCallback
