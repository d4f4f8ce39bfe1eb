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
