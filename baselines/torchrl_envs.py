"""TorchRL for every env: the ``PettingZooWrapper`` settings that work, in one call (needs torchrl).

``torchrl.envs.PettingZooEnv(task=...)`` only builds PettingZoo's own envs, so third-party envs go
through ``PettingZooWrapper(env)``. What each of ours needs (checked by ``check_env_specs`` and a
rollout for every env in tests/test_torchrl.py):

* ``use_mask=True`` where agents finish separately (MultiTaskGridWorld): without it the wrapper
  stops with "Dead agents found in the environment"; with it finished agents are masked out (their
  actions are sent and ignored by the env);
* ``done_on_any=False``: the episode ends when every agent is done, as the env's own;
* ``categorical_actions=True``: actions are indices (``Discrete`` spaces).
* finished agents keep their last observation (where agents finish separately): the wrapper fills
  a masked-out agent's observation with zeros, which for a one-hot observation
  (``observation="state"``/``"own"``) is outside its ``OneHot`` spec (``check_env_specs`` failed on
  about half the seeds of ``chain_slip``); the agent's last observation is its terminal cell, where
  it stays, in every observation mode.

Example::

    from baselines.torchrl_envs import make_torchrl_env
    env = make_torchrl_env("mpg/MultiTaskGridWorld-v0", layout="no_conflict", observation="vector")
    td = env.rollout(100, break_when_any_done=False)
"""

from __future__ import annotations

import functools
from typing import Any

__all__ = ["make_torchrl_env"]


@functools.cache
def _keep_last_observation_class() -> type:
    import torch
    from torchrl.envs.libs.pettingzoo import PettingZooWrapper

    class KeepLastObservation(PettingZooWrapper):
        """``PettingZooWrapper`` whose masked-out (finished) agents keep their last observation
        instead of zeros (outside a ``OneHot`` spec)."""

        def _reset(self, tensordict=None, **kwargs):
            out = super()._reset(tensordict, **kwargs)
            self._last_obs = {g: out[g, "observation"].clone() for g in self.group_map}
            return out

        def _step(self, tensordict):
            out = super()._step(tensordict)
            for g, last in self._last_obs.items():
                obs = torch.where(out[g, "mask"][..., None], out[g, "observation"], last)
                out[g, "observation"] = obs
                self._last_obs[g] = obs.clone()
            return out

    return KeepLastObservation


def make_torchrl_env(
    env_id: str,
    seed: int | None = None,
    *,
    device: Any = None,
    return_state: bool = False,
    **env_kwargs: Any,
):
    """A TorchRL env wrapping ``pettingzoo.make("parallel", env_id, **env_kwargs)``.

    Args:
        env_id: A registered id (``mpg_envs.ENV_IDS``).
        seed: Seeds the env (``env.set_seed``), if given.
        device: The TorchRL device (None: TorchRL's default).
        return_state: Also return the env's global ``state()`` (its state features, float32) under
            the key ``"state"`` (centralised critics, e.g. BenchMARL's MAPPO).
        **env_kwargs: The env's arguments.

    Raises:
        ImportError: Without torchrl (``pip install -e '.[baselines]'`` installs it).
    """
    try:
        from torchrl.envs.libs.pettingzoo import PettingZooWrapper
    except ImportError:  # pragma: no cover - the baselines extra installs it
        raise ImportError(
            "make_torchrl_env needs torchrl: pip install torch==2.13.0, then pip install -e '.[baselines]'"
        ) from None
    import pettingzoo

    import mpg_envs  # noqa: F401 - registers the envs
    from baselines.threads import torch_threads

    torch_threads()  # small networks: one thread unless the user chose (baselines.threads)
    penv = pettingzoo.make("parallel", env_id, **env_kwargs)
    separate = bool(getattr(penv.unwrapped, "agents_finish_separately", False))
    env = (_keep_last_observation_class() if separate else PettingZooWrapper)(
        penv,
        use_mask=separate,
        categorical_actions=True,
        done_on_any=False,
        return_state=return_state,
        device=device,
    )
    if seed is not None:
        env.set_seed(int(seed))
    return env
