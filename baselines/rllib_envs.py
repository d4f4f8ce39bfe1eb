"""RLlib for every env (an optional extra in its own environment: ``ray[rllib]`` pins
``gymnasium==1.2.2``, older than the rest of the project uses).

Install (a separate virtual environment)::

    python3 -m venv .venv-rllib && . .venv-rllib/bin/activate
    pip install torch==2.13.0 && pip install -e ".[rllib]"

``make_rllib_env`` wraps one of our envs in RLlib's ``ParallelPettingZooEnv``; ``register`` makes it
available to ``PPOConfig().environment(name)``. Our envs end episodes the way that wrapper expects:
at the time limit every live agent is truncated (also one that terminates on that step), so its
``__all__`` flags are set (before, 25 of 2000 random ``no_conflict`` episodes raised on the next step).

Example::

    from baselines.rllib_envs import register, shared_ppo_config
    name = register("mpg/Coordination-v0", n_agents=2, observation="vector")
    algo = shared_ppo_config(name, train_batch_size=2048).build_algo()
    algo.train()
"""

from __future__ import annotations

from typing import Any

__all__ = ["make_rllib_env", "register", "shared_ppo_config"]


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
    register_env(name, lambda config: make_rllib_env(env_id, **{**env_kwargs, **dict(config)}))
    return name


def shared_ppo_config(name: str, seed: int = 0, **training: Any):
    """PPO (new API stack) with one policy ``"shared"`` for every agent, sampling in this process.

    Args:
        name: A registered env name (:func:`register`).
        seed: RLlib's seed.
        **training: ``PPOConfig.training`` options (e.g. ``train_batch_size=2048``).
    """
    _ray()
    from ray.rllib.algorithms.ppo import PPOConfig

    from baselines.threads import torch_threads

    torch_threads()  # the learner runs in this process (num_env_runners=0)

    return (
        PPOConfig()
        .environment(name)
        .multi_agent(policies={"shared"}, policy_mapping_fn=lambda agent_id, *a, **k: "shared")
        .env_runners(num_env_runners=0)
        .training(**training)
        .debugging(seed=seed)
    )
