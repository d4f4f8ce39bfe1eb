"""The MiniWorld indoor navigation envs (the ``nav`` extra)."""

from __future__ import annotations

import subprocess
import sys

import gymnasium
import numpy as np
import pettingzoo
import pytest

import mpg_envs
from mpg_envs.nav.reward import depth_window_reward


def _render_or_skip_reason() -> str | None:
    try:
        from mpg_envs.nav import make_env

        make_env("hallway", resolution=8).reset(seed=0)
    except ImportError as err:
        return f"MiniWorld not installed ({err})"
    except Exception as err:  # no EGL / OpenGL context
        return f"headless OpenGL (EGL) rendering unavailable: {type(err).__name__}: {err}"
    return None


_SKIP = _render_or_skip_reason()
needs_render = pytest.mark.skipif(_SKIP is not None, reason=str(_SKIP))
ENVS = ("hallway", "rooms", "hall", "pyramid")


# ---- the reward (pure NumPy) -------------------------------------------------------------
def test_depth_reward_hand_computed():
    """PEDRA's avg_depth by hand on a 20 x 20 map (max_depth 10, thresh 50)."""
    d = np.full((20, 20), 2.0)  # 0.2 after normalising
    d[8:12, 0:20] = 1.0  # a band at 0.1
    # g = (320 * 0.2 + 80 * 0.1) / 400 = 0.18; n = 0.18 * 50 / 3 = 3; window 20/3 x 20/3;
    # top = int(0.9 * 20 * 2 / 6) = 6, left = int(20 * 2 / 6) = 6; rows round(6)..round(12.67) =
    # 6..12, cols 6..12: 7 x 7 = 49 values, 28 of them (rows 8..11) in the band at 0.1;
    # nearest 5%: round(2.45) = 2 values, both 0.1
    assert depth_window_reward(d) == pytest.approx(0.1)
    assert depth_window_reward(d[:, :, None]) == pytest.approx(0.1)
    d[8:12, 9] = 0.5  # 4 values at 0.05: g = 0.1795, n = 2.9917, top = int(5.99) = 5, left = 6;
    # rows 5..11, cols 6..12 hold them, so the nearest 2 values are 0.05
    assert depth_window_reward(d) == pytest.approx(0.05)
    # close everywhere (g * 50 / 3 < 1) -> n = 1: the whole image, nearest value (5% of 4 -> 1)
    assert depth_window_reward(np.array([[0.1, 0.2], [0.2, 0.3]])) == pytest.approx(0.01)
    # all beyond max_depth, 64 x 64: clipped to 1; n = 50/3, top = int(27.07) = 27, left = 30,
    # a 4 x 4 window of ones
    assert depth_window_reward(np.full((64, 64), 1e308)) == pytest.approx(1.0)
    # the same on 4 x 4: the window (0.24 x 0.24 pixels) rounds to nothing -> 0, as PEDRA's does
    assert depth_window_reward(np.full((4, 4), 1e308)) == 0.0
    assert depth_window_reward(np.zeros((5, 5))) == 0.0  # PEDRA: an all-zero window is 0


@pytest.mark.parametrize(
    "depth, match",
    [
        (np.zeros((0, 3)), "shape"),
        (np.zeros((3, 3, 2)), "shape"),
        (np.array([[np.nan, 1.0]]), "finite"),
        (np.array([[np.inf, 1.0]]), "finite"),
        (np.array([[-1.0, 1.0]]), ">= 0"),
    ],
)
def test_depth_reward_refuses_bad_maps(depth, match):
    with pytest.raises(ValueError, match=match):
        depth_window_reward(depth)


@pytest.mark.parametrize(
    "kw", [{"max_depth": 0}, {"max_depth": float("nan")}, {"thresh": -1}, {"thresh": "1"}]
)
def test_depth_reward_refuses_bad_parameters(kw):
    with pytest.raises(ValueError, match=next(iter(kw))):
        depth_window_reward(np.ones((3, 3)), **kw)


# ---- import and registration ---------------------------------------------------------------
def test_importing_mpg_envs_does_not_import_miniworld():
    code = "import sys, mpg_envs, mpg_envs.nav; assert 'miniworld' not in sys.modules; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"


def test_missing_extra_names_the_install_line():
    code = (
        "import sys; sys.modules['miniworld'] = None\n"
        "from mpg_envs.nav import make_env\n"
        "try:\n    make_env('hallway')\nexcept ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert 'pip install -e ".[nav]"' in out.stdout


def test_nav_ids_are_registered_apart_from_the_tabular_ones():
    assert "mpg/IndoorNav-v0" in pettingzoo.parallel_registry
    assert "mpg/IndoorNav-v0" not in mpg_envs.ENV_IDS
    for env_id in mpg_envs.NAV_GYM_IDS:
        assert env_id in gymnasium.registry and env_id not in mpg_envs.GYM_IDS


# ---- bad input (checked before MiniWorld is touched) -----------------------------------------
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"environment": "office"}, "environment must be one of"),
        ({"environment": 3}, "environment must be one of"),
        ({"resolution": 0}, "resolution"),
        ({"resolution": -64}, "resolution"),
        ({"resolution": 64.5}, "resolution"),
        ({"resolution": 10**6}, "resolution"),
        ({"resolution": True}, "resolution"),
        ({"colour": "red"}, "unknown keyword"),
    ],
)
def test_make_env_refuses_bad_input(kwargs, match):
    from mpg_envs.nav import make_env

    with pytest.raises(ValueError, match=match):
        make_env(**kwargs)


@needs_render
@pytest.mark.parametrize("action", [-1, 25, 3.0, "1", None, True, np.array([1, 2])])
def test_actions_out_of_range_are_refused(action):
    env = gymnasium.make("mpg/IndoorNav-Hallway-v0", resolution=8).unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action must be an int in \[0, 24\]"):
        env.step(action)


@needs_render
@pytest.mark.parametrize("seed", [-1, "x", 1.5, True])
def test_bad_seed_is_refused(seed):
    env = gymnasium.make("mpg/IndoorNav-Pyramid-v0", resolution=8).unwrapped
    with pytest.raises(ValueError, match="seed"):
        env.reset(seed=seed)


@needs_render
@pytest.mark.parametrize("kwargs", [{"max_episode_steps": 0}, {"crash_reward": float("nan")}])
def test_bad_episode_parameters(kwargs):
    from mpg_envs.nav import make_env

    with pytest.raises(ValueError, match=next(iter(kwargs))):
        make_env("hallway", resolution=8, **kwargs)


@needs_render
def test_parallel_env_refuses_bad_input():
    with pytest.raises(ValueError, match="max_cycles"):
        pettingzoo.make("parallel", "mpg/IndoorNav-v0", max_cycles=-1)
    from mpg_envs.nav import parallel_env

    with pytest.raises(ValueError, match="environment must be one of"):
        parallel_env(environments=("hallway", "attic"), resolution=8)
    with pytest.raises(ValueError, match="environments must be"):
        parallel_env(environments="hallway", resolution=8)


# ---- the envs -----------------------------------------------------------------------------
@needs_render
@pytest.mark.parametrize("name", ["Hallway", "Rooms", "Hall", "Pyramid"])
def test_gymnasium_env_checker(name):
    from gymnasium.utils.env_checker import check_env

    env = gymnasium.make(f"mpg/IndoorNav-{name}-v0", resolution=16)
    check_env(env.unwrapped, skip_render_check=True)


@needs_render
def test_pettingzoo_parallel_api():
    from pettingzoo.test import parallel_api_test

    env = pettingzoo.make("parallel", "mpg/IndoorNav-v0", resolution=16, max_cycles=30)
    parallel_api_test(env, num_cycles=40)


def _rollout(env_id, seed, steps=40, resolution=16):
    env = gymnasium.make(env_id, resolution=resolution).unwrapped
    rng = np.random.default_rng(seed)
    frames, rewards = [env.reset(seed=seed)[0]], []
    for _ in range(steps):
        obs, r, term, trunc, _ = env.step(int(rng.integers(25)))
        frames.append(obs)
        rewards.append(r)
        if term or trunc:
            break
    return np.stack(frames), np.array(rewards)


@needs_render
def test_same_seed_same_frames_and_rewards():
    f1, r1 = _rollout("mpg/IndoorNav-Hall-v0", 3)
    f2, r2 = _rollout("mpg/IndoorNav-Hall-v0", 3)
    np.testing.assert_array_equal(f1, f2)
    np.testing.assert_array_equal(r1, r2)
    f3, _ = _rollout("mpg/IndoorNav-Hall-v0", 4)
    assert not np.array_equal(f1[0], f3[0])  # another seed, another start


@needs_render
@pytest.mark.parametrize("name", ENVS)
def test_collision_ends_episode_and_distance_is_path_length(name):
    from mpg_envs.nav import make_env
    from mpg_envs.nav.env import SPEEDS

    env = make_env(name, resolution=8, max_episode_steps=2000)
    for seed in range(10):  # a start that is not already facing a wall up close
        env.reset(seed=seed)
        positions = [np.array(env.agent.pos, dtype=float)]
        for t in range(2000):
            _, r, term, trunc, info = env.step(12 + (t % 3 == 0))  # straight ahead, 0.2 or 0.25 m
            positions.append(np.array(env.agent.pos, dtype=float))
            if term or trunc:
                break
        if len(positions) > 4:
            break
    assert term and not trunc and info["collision"] and r == -1.0
    np.testing.assert_allclose(positions[-1], positions[-2])  # the blocked move did not happen
    path = float(np.linalg.norm(np.diff(np.stack(positions), axis=0), axis=1).sum())
    assert info["distance"] == pytest.approx(path, rel=1e-12)
    assert 0 < info["distance"] <= (len(positions) - 1) * max(SPEEDS)


@needs_render
def test_step_limit_truncates():
    from mpg_envs.nav import make_env

    env = make_env("hall", resolution=8, max_episode_steps=2)
    env.reset(seed=0)
    env.step(10)  # yaw -15 deg, slowest
    _, _, term, trunc, info = env.step(10)
    assert (term, trunc) == (False, True) and info["distance"] == pytest.approx(0.2)


@needs_render
def test_the_four_environments_differ():
    from mpg_envs.nav import make_env

    firsts, tops = [], []
    for name in ENVS:
        env = make_env(name, resolution=32)
        obs, _ = env.reset(seed=0)
        firsts.append(obs.astype(float))
        tops.append(env.render_top_view().astype(float))
    for i in range(4):
        for j in range(i + 1, 4):
            assert np.abs(firsts[i] - firsts[j]).mean() > 10, (ENVS[i], ENVS[j])
            assert np.abs(tops[i] - tops[j]).mean() > 10, (ENVS[i], ENVS[j])


@needs_render
def test_resolution_is_a_parameter():
    env = gymnasium.make("mpg/IndoorNav-Rooms-v0", resolution=103)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (103, 103, 3) and obs.dtype == np.uint8
    assert env.action_space.n == 25


@needs_render
def test_parallel_agents_finish_separately():
    env = pettingzoo.make("parallel", "mpg/IndoorNav-v0", resolution=8, max_cycles=300)
    env.reset(seed=0)
    done_at = {}
    for t in range(300):
        acts = {a: 12 for a in env.agents}
        _, _, term, trunc, infos = env.step(acts)
        for a in acts:
            if term[a] or trunc[a]:
                done_at[a] = t
                assert infos[a]["collision"] == term[a]
        if not env.agents:
            break
    assert set(done_at) == set(env.possible_agents)
    assert len(set(done_at.values())) > 1  # different worlds, different crash times


@needs_render
def test_parallel_step_input():
    env = pettingzoo.make("parallel", "mpg/IndoorNav-v0", resolution=8, max_cycles=5)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="missing"):
        env.step({"agent_0": 12})
    with pytest.raises(ValueError, match="unknown agents"):
        env.step({**{a: 12 for a in env.agents}, "agent_9": 0})
    with pytest.raises(ValueError, match="action must be an int"):
        env.step({a: 99 for a in env.agents})
    with pytest.raises(ValueError, match="seed"):
        env.reset(seed=-1)
    # the step limit truncates every live agent, also one that crashes on the last step
    env.reset(seed=0)
    for _ in range(5):
        _, _, term, trunc, _ = env.step({a: 12 for a in env.possible_agents})  # finished ones ignored
    assert not env.agents


@needs_render
def test_gymnasium_sync_vector_env():
    venv = gymnasium.make_vec("mpg/IndoorNav-Rooms-v0", num_envs=2, vectorization_mode="sync", resolution=8)
    obs, infos = venv.reset(seed=0)
    assert obs.shape == (2, 8, 8, 3) and infos["distance"].tolist() == [0.0, 0.0]
    obs, rewards, term, trunc, infos = venv.step(np.array([12, 7]))
    assert rewards.shape == (2,) and infos["distance"].dtype == np.float64
    venv.close()


@needs_render
def test_reward_reads_the_depth_of_the_rendered_frame_as_render_depth_does():
    """step() renders once and reads that frame's depth buffer; MiniWorld's render_depth() renders
    the same view again: the rewards must agree on every step of an episode in every env."""
    from mpg_envs.nav import make_env
    from mpg_envs.nav.reward import MAX_DEPTH

    for name in ENVS:
        env = make_env(name, resolution=40)
        env.reset(seed=3)
        rng = np.random.default_rng(0)
        for _ in range(15):
            _, r, term, trunc, info = env.step(int(rng.integers(25)))
            if term or trunc:
                break
            assert r == depth_window_reward(env.render_depth(), max_depth=MAX_DEPTH)
        env.close()
