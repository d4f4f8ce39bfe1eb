"""RLlib (optional extra, its own environment): our envs through ``ParallelPettingZooEnv``.

Skipped unless ray is installed (``pip install -e '.[rllib]'`` in a separate environment: RLlib pins
gymnasium 1.2.2).
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ray.rllib")

from baselines.rllib_envs import make_rllib_env, register, shared_ppo_config  # noqa: E402


def test_episodes_end_with_all_flags_on_the_grid_world():
    # agents finish separately; the last step of an episode sets __all__ (RLlib raised before)
    env = make_rllib_env("mpg/MultiTaskGridWorld-v0", layout="no_conflict", max_cycles=30)
    rng = np.random.default_rng(0)
    for ep in range(300):
        obs, _ = env.reset(seed=ep)
        while True:
            obs, rew, term, trunc, _ = env.step({a: int(rng.integers(4)) for a in obs})
            if term["__all__"] or trunc["__all__"]:
                break


@pytest.mark.slow
def test_ppo_trains_one_iteration_with_a_shared_policy():
    name = register("mpg/Coordination-v0", n_agents=2, observation="vector")
    config = shared_ppo_config(name, train_batch_size=400, minibatch_size=100, num_epochs=1)
    algo = config.build_algo()
    result = algo.train()
    algo.stop()
    assert result["env_runners"]["num_env_steps_sampled_lifetime"] >= 400
