"""TorchRL: every env passes ``check_env_specs`` and rolls out through ``make_torchrl_env``."""

from __future__ import annotations

import pytest

pytest.importorskip("torchrl")
torch = pytest.importorskip("torch")

import mpg_envs  # noqa: E402
from baselines.torchrl_envs import make_torchrl_env  # noqa: E402

CASES = {  # small instances; the grid world with agents that finish separately
    "mpg/Congestion-v0": {"n_agents": 3},
    "mpg/Coordination-v0": {"n_agents": 2},
    "mpg/Distancing-v0": {"n_agents": 4},
    "mpg/MultiTaskGridWorld-v0": {"layout": "no_conflict", "observation": "vector"},
    "mpg/TugOfWar-v0": {"n_positions": 3},
}


def test_every_registered_env_has_a_case():
    assert set(CASES) == set(mpg_envs.ENV_IDS)


@pytest.mark.parametrize("env_id", sorted(CASES))
def test_check_env_specs_and_rollout(env_id):
    from torchrl.envs.utils import check_env_specs

    torch.set_num_threads(1)
    env = make_torchrl_env(env_id, seed=0, **CASES[env_id])
    check_env_specs(env, seed=0)
    td = env.rollout(250, break_when_any_done=False)
    assert td.batch_size == torch.Size([250])
    group = next(iter(env.group_map))
    reward = td["next", group, "reward"]
    assert torch.isfinite(reward).all()
    if env_id == "mpg/MultiTaskGridWorld-v0":  # agents finish separately: the mask records it
        mask = td[group, "mask"]
        assert (~mask).any() and mask[0].all()


@pytest.mark.parametrize("observation", ["state", "own", "vector", "onehot"])
def test_finished_agents_keep_a_valid_observation(observation):
    """chain_slip's agents finish at different times; the wrapper zeroed a finished agent's
    observation, which for a one-hot observation is outside its OneHot spec (check_env_specs
    failed on 10 of these 20 seeds with "state" and 5 with "own")."""
    from torchrl.envs.utils import check_env_specs

    torch.set_num_threads(1)
    for seed in range(20):
        env = make_torchrl_env(
            "mpg/MultiTaskGridWorld-v0", seed=seed, layout="chain_slip", observation=observation
        )
        check_env_specs(env, seed=seed)
    td = env.rollout(60, break_when_any_done=False)
    obs, mask = td["next", "agent", "observation"], td["next", "agent", "mask"]
    for t in range(1, 60):  # a finished agent's observation stays what it was when it finished
        dead = ~td[t]["agent", "mask"]  # finished before step t
        assert torch.equal(obs[t][dead], obs[t - 1][dead])
    assert (~mask).any()


def test_agents_see_the_observation_they_finish_on():
    """An agent that terminates, or is truncated at the time limit, gets the observation of the
    state it reached (a critic bootstraps from it at the time limit); the wrapper kept the
    observation of the step before (the last one while it was live) instead."""
    env = make_torchrl_env(
        "mpg/MultiTaskGridWorld-v0", seed=0, layout="chain_slip", observation="own", max_cycles=4
    )
    td = env.rollout(80, break_when_any_done=False)
    live = td["agent", "mask"]  # live before each step
    cell = td["next", "agent", "info", "cell"].long()  # the cell each live agent reached
    seen = td["next", "agent", "observation"].argmax(-1)
    assert torch.equal(seen[live], cell[live])
    finishing = live & ~td["next", "agent", "mask"]
    assert finishing.any() and td["next", "agent", "truncated"][finishing].any()
