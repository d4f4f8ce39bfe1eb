"""``mpg_envs.vector.ParallelVectorEnv`` against the single PettingZoo env and the exact model."""

from __future__ import annotations

import numpy as np
import pettingzoo
import pytest

import mpg_envs
from mpg_envs.model import ravel_actions
from mpg_envs.vector import ParallelVectorEnv, make_parallel_vec

# small configs of every registered env; the time limits let episodes end both ways
CONFIGS = [
    ("mpg/Coordination-v0", dict(n_agents=2, max_cycles=7)),
    ("mpg/Coordination-v0", dict(n_agents=3, max_cycles=5, observation="vector")),
    # every episode reaches the sink at step 3, the time limit: terminated and truncated together
    ("mpg/Congestion-v0", dict(n_agents=3, at_sink="terminate", slip=0.2, max_cycles=3)),
    ("mpg/Congestion-v0", dict(n_agents=3, slip=0.2, max_cycles=4, observation="vector")),
    ("mpg/Distancing-v0", dict(n_agents=3, max_cycles=5)),
    ("mpg/MultiTaskGridWorld-v0", dict(layout="no_conflict", slip=0.2, max_cycles=12, observation="vector")),
    ("mpg/MultiTaskGridWorld-v0", dict(layout="chain_reversed", max_cycles=6)),
    ("mpg/MultiTaskGridWorld-v0", dict(layout="chain_slip", max_cycles=6, observation="onehot")),
    ("mpg/TugOfWar-v0", dict(n_positions=4, max_cycles=6, observation="vector")),
]
IDS = [f"{e.split('/')[1]}-{'-'.join(f'{k}={v}' for k, v in kw.items())}" for e, kw in CONFIGS]


def test_every_registered_env_is_covered():
    assert {e for e, _ in CONFIGS} == set(mpg_envs.ENV_IDS)


@pytest.mark.parametrize(("env_id", "kw"), CONFIGS, ids=IDS)
def test_one_copy_reproduces_the_single_env_step_for_step(env_id, kw):
    single = pettingzoo.make("parallel", env_id, **kw).unwrapped
    venv = make_parallel_vec(env_id, 1, **kw)
    agents = single.possible_agents
    sizes = np.asarray(single.dynamics.action_sizes)
    rng = np.random.default_rng(1)
    obs1, info1 = single.reset(seed=7)
    obs, infos = venv.reset(seed=7)

    def same_obs(batched_row, single_obs, live):
        assert set(single_obs) == set(live)
        for a in live:
            np.testing.assert_array_equal(batched_row[agents.index(a)], single_obs[a])

    same_obs(obs[0], obs1, agents)
    assert infos["state"][0] == single.state_index() and infos["alive"].all()
    seen = dict(terminated=0, truncated=0, episodes=0, partial=0)
    for _ in range(300):
        act = rng.integers(0, sizes, (1, len(agents)))
        live = list(single.agents)
        o1, r1, te1, tr1, _ = single.step({a: int(act[0, agents.index(a)]) for a in live})
        obs, rew, term, trunc, infos = venv.step(act)
        ended = not single.agents
        assert bool(infos.get("_final_obs", [False])[0]) is ended
        same_obs(infos["final_obs"][0] if ended else obs[0], o1, live)
        for i, a in enumerate(agents):
            assert rew[0, i] == (r1[a] if a in live else 0.0)
            assert term[0, i] == (te1[a] if a in live else False)
            assert trunc[0, i] == (tr1[a] if a in live else False)
        if ended:
            assert infos["final_info"]["state"][0] == single.state_index()
            o1, _ = single.reset()  # no seed: the generator goes on, as the batch's autoreset does
            same_obs(obs[0], o1, agents)
            seen["episodes"] += 1
        assert infos["alive"][0].tolist() == [a in single.agents for a in agents]
        assert infos["state"][0] == single.state_index()
        seen["terminated"] += bool(term.any())
        seen["truncated"] += bool(trunc.any())
        seen["partial"] += bool(infos["alive"].any() and not infos["alive"].all())
    assert seen["episodes"] >= 10 and seen["truncated"] > 0
    if env_id == "mpg/MultiTaskGridWorld-v0" or kw.get("at_sink") == "terminate":
        assert seen["terminated"] > 0
    if single.agents_finish_separately:
        assert seen["partial"] > 0


FREQ_CONFIGS = [
    ("mpg/Coordination-v0", dict(n_agents=2, eps=0.2, max_cycles=5)),
    ("mpg/Congestion-v0", dict(n_agents=3, at_sink="terminate", slip=0.3, max_cycles=5)),
    ("mpg/Distancing-v0", dict(n_agents=2, max_cycles=5)),
    ("mpg/MultiTaskGridWorld-v0", dict(layout="chain_slip", slip=0.2, max_cycles=4)),
    ("mpg/MultiTaskGridWorld-v0", dict(layout="chain_reversed", slip=0.3, max_cycles=4)),
    ("mpg/TugOfWar-v0", dict(n_positions=4, slip=0.3, max_cycles=5)),
]


@pytest.mark.parametrize(("env_id", "kw"), FREQ_CONFIGS, ids=[e.split("/")[1] for e, _ in FREQ_CONFIGS])
def test_transition_frequencies_and_rewards_match_the_exact_model(env_id, kw):
    n = 4096
    venv = make_parallel_vec(env_id, n, **kw)
    m = venv.model()
    S, A, N = m.n_states, m.n_joint_actions, m.n_agents
    P = m.P.toarray()  # (S * A, S), row s * A + joint action
    dyn = venv.dynamics
    starts = [s for s in range(S) if dyn.start_error(dyn.decode(np.array([s]))[0]) is None]
    rng = np.random.default_rng(0)
    # every start state at first (a documented reset option), then whatever states occur
    _, infos = venv.reset(seed=0, options={"state": rng.choice(starts, n)})
    counts = np.zeros((S * A, S))
    rew_sum, rew_sq, rew_n = np.zeros((N, S * A)), np.zeros((N, S * A)), np.zeros((N, S * A))
    for _ in range(12):
        s, alive = infos["state"], infos["alive"]
        act = rng.integers(0, m.action_sizes, (n, N))
        _, r, _, _, infos = venv.step(act)
        reached = infos["final_info"]["state"] if "final_info" in infos else infos["state"]
        row = s * A + ravel_actions(np.where(alive, act, 0), m.action_sizes)  # finished agents act 0
        np.add.at(counts, (row, reached), 1)
        for i in range(N):  # rewards of the agents live before the step
            live = alive[:, i]
            np.add.at(rew_sum[i], row[live], r[live, i])
            np.add.at(rew_sq[i], row[live], r[live, i] ** 2)
            np.add.at(rew_n[i], row[live], 1)
    tot = counts.sum(axis=1)
    ok = tot >= 200
    assert ok.sum() >= min(10, S * A)
    freq = counts[ok] / tot[ok, None]
    p = P[ok]
    se = np.sqrt(p * (1 - p) / tot[ok, None])
    assert np.all(np.abs(freq - p) <= 5 * se + 1e-12)  # impossible transitions never happen
    R = m.R.reshape(N, S * A)
    k = rew_n >= 200
    mean = rew_sum[k] / rew_n[k]
    sd = np.sqrt(np.maximum(rew_sq[k] / rew_n[k] - mean**2, 0) / rew_n[k])
    assert k.any() and np.all(np.abs(mean - R[k]) <= 5 * sd + 1e-9)


def test_same_step_autoreset_and_agents_that_finish_separately():
    # first chain, two agents, "own" observation: the cell, S1..S5 = 0..4; both start in S3.
    # agent_0 reaches its goal S1 after two L moves; agent_1: R in S3 -> S4, R reversed in S4 -> S3,
    # L in S3 -> S2, then R reversed in S2 -> S1, task 2's -1
    venv = make_parallel_vec("mpg/MultiTaskGridWorld-v0", 2, layout="chain_reversed")
    first, infos = venv.reset(seed=0)
    assert first.tolist() == [[2, 2], [2, 2]] and first.dtype == np.int64 and infos["alive"].all()
    venv.step(np.array([[0, 1], [0, 1]]))
    obs, r, term, trunc, infos = venv.step(np.array([[0, 1], [1, 1]]))
    assert term.tolist() == [[True, False], [False, False]] and r[0].tolist() == [1.0, 0.0]
    assert infos["alive"].tolist() == [[False, True], [True, True]] and "final_obs" not in infos
    assert obs[0].tolist() == [0, 2]  # the finished agent still sees the current state (its cell S1)
    # its actions are ignored (an out-of-range one too); it gets no reward and no flags
    obs, r, term, trunc, infos = venv.step(np.array([[99, 0], [1, 1]]))
    assert obs[0].tolist() == [0, 1] and r[0, 0] == 0.0 and not term[0, 0] and not trunc[0, 0]
    obs, r, term, trunc, infos = venv.step(np.array([[1, 1], [1, 1]]))
    assert term[0].tolist() == [False, True] and r[0, 1] == -1.0
    assert infos["_final_obs"].tolist() == [True, False] and infos["_final_info"].tolist() == [True, False]
    assert infos["final_obs"][0].tolist() == [0, 0] and infos["final_info"]["state"][0] == 0
    np.testing.assert_array_equal(obs[0], first[0])  # copy 0 restarted within the step
    assert infos["alive"][0].all() and venv.episode_steps.tolist() == [0, 4]
    np.testing.assert_array_equal(infos["final_obs"][1], obs[1])  # copies that go on: obs itself
    obs[0] = 3  # the returned arrays are the caller's, not the env's state
    assert venv.states[0].tolist() == [2, 2]


def test_time_limit_truncates_every_live_agent_and_restarts():
    env = mpg_envs.coordination_v0.parallel_env(n_agents=2, observation="vector", max_cycles=4)
    venv = ParallelVectorEnv(env, 3)
    assert repr(venv) == "ParallelVectorEnv(coordination_v0, num_envs=3, n_agents=2, observation='vector')"
    with pytest.raises(RuntimeError, match=r"call reset\(\) before reading states"):
        venv.states  # noqa: B018
    venv.reset(seed=0)
    for t in range(4):
        obs, r, term, trunc, infos = venv.step(np.zeros((3, 2), np.int64))
        assert not term.any() and trunc.all() == (t == 3)
    assert infos["_final_obs"].all() and venv.episode_steps.tolist() == [0, 0, 0]
    assert obs.shape == infos["final_obs"].shape == (3, 2, 4) and obs.dtype == np.float32
    assert venv.observation_space.contains(obs) and venv.action_space.shape == (3, 2)
    assert (
        venv.single_observation_space.shape == (2, 4) and venv.metadata["autoreset_mode"].value == "SameStep"
    )


def test_seeding():
    def run(seed, n=16):
        venv = make_parallel_vec("mpg/MultiTaskGridWorld-v0", n, layout="no_conflict", slip=0.5, max_cycles=8)
        obs, _ = venv.reset(seed=seed)
        acts = np.random.default_rng(0).integers(0, 4, (30, n, 4))
        return np.stack([obs] + [venv.step(a)[0] for a in acts])

    a, b, c = run(3), run(3), run(4)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert all(not np.array_equal(a[:, 0], a[:, k]) for k in range(1, 16))  # every copy its own draws
    # a seed restarts the stream; no seed continues it
    venv = make_parallel_vec("mpg/Coordination-v0", 8, n_agents=2, max_cycles=3)
    x = venv.reset(seed=5)[0]
    y = venv.reset()[0]
    np.testing.assert_array_equal(venv.reset(seed=5)[0], x)
    assert venv.np_random_seed == 5 and not np.array_equal(x, y)


def test_bad_input():
    venv = make_parallel_vec("mpg/Congestion-v0", 4, n_agents=3)
    with pytest.raises(RuntimeError, match=r"call reset\(\) before step\(\)"):
        venv.step(np.zeros((4, 3), np.int64))
    venv.reset(seed=0)
    with pytest.raises(
        ValueError, match=r"actions must be an integer array of shape \(num_envs, N\) = \(4, 3\)"
    ):
        venv.step(np.zeros((4, 2), np.int64))
    with pytest.raises(ValueError, match=r"shape \(num_envs, N\) = \(4, 3\), got shape \(12,\)"):
        venv.step(np.zeros(12, np.int64))
    with pytest.raises(TypeError, match=r"dtype float64"):
        venv.step(np.zeros((4, 3)))
    with pytest.raises(TypeError, match=r"dtype bool"):
        venv.step(np.zeros((4, 3), bool))
    with pytest.raises(ValueError, match=r"actions\[2, 1\] = 2 is out of range for agent 1 \(\|A_1\| = 2\)"):
        venv.step(np.array([[0, 0, 0], [1, 1, 1], [0, 2, 0], [0, 0, 0]]))
    with pytest.raises(ValueError, match=r"actions\[0, 0\] = -1 is out of range"):
        venv.step(-np.ones((4, 3), np.int64))
    venv.step([[0, 1, 0]] * 4)  # nested lists of ints are fine
    with pytest.raises(ValueError, match="seed must be None or a non-negative integer"):
        venv.reset(seed=-1)
    with pytest.raises(ValueError, match=r"options\['state'\] must be a model state index in \[0, 18\)"):
        venv.reset(options={"state": 18})
    with pytest.raises(ValueError, match=r"of shape \(num_envs,\) = \(4,\)"):
        venv.reset(options={"state": [0, 1]})
    with pytest.raises(ValueError, match="num_envs must be a positive integer, got 0"):
        make_parallel_vec("mpg/Coordination-v0", 0)
    with pytest.raises(ValueError, match="env_id must be one of"):
        make_parallel_vec("mpg/Nope-v0", 2)
    with pytest.raises(TypeError, match="env must be an mpg_envs.core.MPGParallelEnv"):
        ParallelVectorEnv(object(), 2)
    with pytest.raises(ValueError, match="does not render"):
        make_parallel_vec("mpg/Coordination-v0", 2, render_mode="ansi")
    with pytest.raises(mpg_envs.TooLargeError, match="num_envs=67,108,864 copies"):
        make_parallel_vec("mpg/Coordination-v0", 2**26, n_agents=2, observation="vector")


# ------------------------------------------------------------------ hostile input


@pytest.mark.parametrize("observation", ["state", "own", "vector"])
def test_huge_num_envs_is_refused_before_allocating(observation):
    """Every per-copy array counts (states, masks, counters, actions, rewards, observations), also
    with index observations whose float count is 0: a TooLargeError giving the size, the limit
    and how many copies fit, instead of a raw MemoryError."""
    match = r"num_envs=1,000,000,000 copies.*GiB.*at most num_envs="
    with pytest.raises(mpg_envs.TooLargeError, match=match):
        make_parallel_vec("mpg/Congestion-v0", 10**9, n_agents=2, observation=observation)


def test_size_guard_honours_the_memory_limit(monkeypatch):
    from mpg_envs.vector import batch_bytes

    env = pettingzoo.make("parallel", "mpg/Coordination-v0", n_agents=2).unwrapped
    need = batch_bytes(env.dynamics, "state", 1000)
    monkeypatch.setenv("MPG_MAX_BYTES", str(need))
    assert ParallelVectorEnv(env, 1000).num_envs == 1000
    with pytest.raises(mpg_envs.TooLargeError, match="at most num_envs=1,000 copies"):
        ParallelVectorEnv(env, 1001)


@pytest.mark.parametrize("num_envs", [0, -1, True, 1.5, "2", None, 2.0])
def test_bad_num_envs_is_named(num_envs):
    with pytest.raises(ValueError, match=f"num_envs must be a positive integer, got {num_envs!r}"):
        make_parallel_vec("mpg/Coordination-v0", num_envs)


@pytest.mark.parametrize(
    "actions, match",
    [
        ([[2**70, 0]] * 3, "beyond int64"),
        (np.full((3, 2), 2**63, np.uint64), "9223372036854775808 .beyond int64"),
        (np.full((3, 2), np.nan), "dtype float64"),
        (np.zeros((3, 2), bool), "dtype bool"),
        (np.zeros(3, np.int64), r"got shape \(3,\)"),
    ],
)
def test_step_refuses_actions_beyond_int64_and_non_integers(actions, match):
    """2**70 raised a raw OverflowError; a uint64 2**63 was reported as -9223372036854775808."""
    venv = make_parallel_vec("mpg/Coordination-v0", 3, n_agents=2)
    venv.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        venv.step(actions)


def test_reset_refuses_start_states_beyond_int64():
    venv = make_parallel_vec("mpg/Coordination-v0", 3, n_agents=2)
    with pytest.raises(ValueError, match="got the index 1180591620717411303424"):
        venv.reset(options={"state": 2**70})
    with pytest.raises(ValueError, match="beyond int64"):
        venv.reset(options={"state": [0, 1, 2**70]})


def test_state_properties_before_reset_say_what_was_read():
    venv = make_parallel_vec("mpg/Coordination-v0", 2)
    with pytest.raises(RuntimeError, match="call reset\\(\\) before reading alive"):
        venv.alive
    assert venv.render() is None  # render_mode is None: nothing to draw (it raised AttributeError)


@pytest.mark.parametrize("kind", ["parallel", "aec"])
@pytest.mark.parametrize("env_id", sorted(mpg_envs.ENV_IDS))
def test_pettingzoo_make_refuses_max_cycles_minus_one(kind, env_id):
    """PettingZoo's make drops max_cycles=-1 ("no limit"); the env then silently kept its default
    (e.g. 20 steps). The registered creator sees no max_cycles and refuses."""
    with pytest.raises(ValueError, match="max_cycles=-1"):
        pettingzoo.make(kind, env_id, max_cycles=-1)
    default = pettingzoo.spec(kind, env_id).max_cycles
    env = pettingzoo.make(kind, env_id)
    assert env.unwrapped.max_cycles == default
    assert pettingzoo.make(kind, env_id, max_cycles=3).unwrapped.max_cycles == 3
    with pytest.raises(ValueError, match="max_cycles must be a positive integer, got True"):
        pettingzoo.make(kind, env_id, max_cycles=True)


def test_num_envs_beyond_int64_is_refused_by_size():
    """10**30 copies raised a raw OverflowError when the arrays were allocated."""
    with pytest.raises(mpg_envs.TooLargeError, match="e\\+23 GiB"):
        make_parallel_vec("mpg/Coordination-v0", 10**30)


def test_reset_copies_restarts_only_the_chosen_copies():
    """Chosen copies draw new starts from mu with the batch's generator (one draw of
    sample_initial for them, in copy order); the others keep their states, steps and live agents."""
    kw = {"layout": "chain_slip", "observation": "own", "max_cycles": 50}
    venv = make_parallel_vec("mpg/MultiTaskGridWorld-v0", 4, **kw)
    venv.reset(seed=3)
    venv.step(np.zeros((4, 2), np.int64))
    before, steps = venv.states, venv.episode_steps
    rng_copy = np.random.Generator(np.random.PCG64())
    rng_copy.bit_generator.state = venv.np_random.bit_generator.state
    chosen = np.array([True, False, True, False])
    obs, infos = venv.reset_copies(chosen)
    want = venv.dynamics.sample_initial(2, rng_copy)
    np.testing.assert_array_equal(venv.states[chosen], want)
    np.testing.assert_array_equal(venv.states[~chosen], before[~chosen])
    assert venv.episode_steps.tolist() == [0, steps[1], 0, steps[3]]
    assert venv.alive[chosen].all() and obs.shape == (4, 2)
    np.testing.assert_array_equal(infos["state"], venv.dynamics.index(venv.states))
    for bad in ([True, False], np.ones(4), "all", None):
        with pytest.raises(ValueError, match="copies must be bools of shape"):
            venv.reset_copies(bad)
    with pytest.raises(RuntimeError, match="reset"):
        make_parallel_vec("mpg/Coordination-v0", 2).reset_copies(np.ones(2, bool))


@pytest.mark.parametrize("env_id", sorted(mpg_envs.ENV_IDS))
def test_batch_extra_infos_are_the_single_envs(env_id):
    """The single env's infos are row 0 of batch_extra_infos (which batched envs call)."""
    env = pettingzoo.make("parallel", env_id).unwrapped
    rng = np.random.default_rng(0)
    obs, infos = env.reset(seed=1)
    for _ in range(12):
        if not env.agents:
            obs, infos = env.reset()
        acts = {a: int(rng.integers(env.action_space(a).n)) for a in env.agents}
        _, rewards, _, _, infos = env.step(acts)
        prev = env._prev_state
        a = np.zeros(env.dynamics.n_agents, np.int64)
        for agent, x in acts.items():
            a[env.possible_agents.index(agent)] = x
        r = np.array([[rewards.get(ag, 0.0) for ag in env.possible_agents]])
        rows = env.batch_extra_infos(
            np.repeat(env._state, 3, 0), np.repeat(prev, 3, 0), np.repeat(a[None], 3, 0), np.repeat(r, 3, 0)
        )
        for agent, info in infos.items():
            i = env.possible_agents.index(agent)
            for key, arr in rows.items():
                assert arr.shape == (3, env.dynamics.n_agents)
                assert info[key] == arr[0, i] == arr[2, i], (key, agent)
