"""Observations belong to the dynamics: ``Dynamics.observe(states, mode)``.

The registry battery (``tests/test_battery.py``) checks, for every registered env and mode, that the
env's observations are the rows of ``dynamics.observe``. Here: the values pinned against encodings
computed independently from the state descriptors (the env's "vector" observation as it was built
before it moved into the dynamics), the single-task Gymnasium env, a user's own dynamics with the
default features, vectorisation, and the errors.
"""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest

import mpg_envs  # noqa: F401 - registers the envs
from mpg_envs import congestion_v0, coordination_v0, distancing_v0, multitask_gridworld_v0
from mpg_envs.core import (
    MAX_OBSERVATION_BATCH_FLOATS,
    MAX_OBSERVATION_FLOATS,
    MAX_ONEHOT_STATES,
    OBS_MODES,
    Dynamics,
    MPGParallelEnv,
)


def onehot(i: int, n: int) -> list[float]:
    return [1.0 if j == i else 0.0 for j in range(n)]


def vector_by_hand(descriptor: list[int], n_agents: int, encode) -> list[list[float]]:
    """Each agent's "vector" observation, with plain Python: one-hot id + ``encode(descriptor)``."""
    return [onehot(i, n_agents) + encode(descriptor) for i in range(n_agents)]


# ---------------------------------------------------------------------------- pinned values
@pytest.mark.parametrize("kw", [{"n_agents": 3}, {"n_agents": 2, "graph": "ring", "n_layers": 3, "width": 3}])
def test_congestion_vector_is_agent_id_then_every_agents_vertex(kw):
    env = congestion_v0.parallel_env(observation="vector", **kw)
    dyn = env.dynamics
    N, V = dyn.n_agents, dyn.n_vertices
    states = dyn.states()

    def encode(desc):
        return [x for v in desc for x in onehot(v, V)]

    want = np.array([vector_by_hand(s, N, encode) for s in states.tolist()], np.float32)
    np.testing.assert_array_equal(dyn.observe(states, "vector"), want)
    for s in (0, 5, len(states) - 1):
        obs, _ = env.reset(options={"state": s})
        for i, a in enumerate(env.agents):
            np.testing.assert_array_equal(obs[a], want[s, i])
    np.testing.assert_array_equal(dyn.observe(states, "own"), states)  # own vertex
    assert env.own_observation_size == V == dyn.own_observation_size


def test_congestion_vector_pinned_numbers():
    """N = 2 on the default graph (s, 4 inner vertices, t): agent 1 at state (v1.0, v1.1)."""
    env = congestion_v0.parallel_env(n_agents=2, observation="vector")
    obs, _ = env.reset(options={"state": np.array([1, 2])})
    np.testing.assert_array_equal(
        obs["agent_1"], [0, 1] + [0, 1, 0, 0, 0, 0] + [0, 0, 1, 0, 0, 0]
    )  # fmt: skip
    np.testing.assert_array_equal(env.state(), [0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0])


@pytest.mark.parametrize("n", [2, 3, 5])
def test_coordination_vector_own_and_onehot_by_hand(n):
    env = coordination_v0.parallel_env(n_agents=n, observation="vector")
    dyn = env.dynamics
    states = dyn.states()
    want = np.array(
        [vector_by_hand(s, n, lambda d: [float(x) for x in d]) for s in states.tolist()], np.float32
    )
    np.testing.assert_array_equal(dyn.observe(states, "vector"), want)
    np.testing.assert_array_equal(dyn.observe(states, "own"), states)  # own local state
    # App. G's network input: one-hot of the 2^N state index, agent 0 the most significant bit
    idx = [int("".join(map(str, s)), 2) for s in states.tolist()]
    want_onehot = np.array([[onehot(k, 2**n)] * n for k in idx], np.float32)
    np.testing.assert_array_equal(dyn.observe(states, "onehot"), want_onehot)
    obs, _ = coordination_v0.parallel_env(n_agents=n, observation="onehot").reset(options={"state": 1})
    np.testing.assert_array_equal(obs["agent_0"], onehot(1, 2**n))


def test_coordination_vector_pinned_numbers():
    dyn = coordination_v0.parallel_env(n_agents=3).dynamics
    np.testing.assert_array_equal(dyn.observe(np.array([[1, 0, 1]]), "vector")[0, 1], [0, 1, 0, 1, 0, 1])
    np.testing.assert_array_equal(dyn.observe(np.array([[1, 0, 1]]), "state")[0], [5, 5, 5])


def test_distancing_and_gridworld_vector_by_hand():
    dyn = distancing_v0.parallel_env(n_agents=4).dynamics
    want = np.array([vector_by_hand(s, 4, lambda d: onehot(d[0], 2)) for s in ([0], [1])], np.float32)
    np.testing.assert_array_equal(dyn.observe(dyn.states(), "vector"), want)
    grid = multitask_gridworld_v0.parallel_env(layout="chain_slip")
    dyn = grid.dynamics
    S = dyn.n_cells
    states = dyn.states()
    want = [vector_by_hand(s, 2, lambda d: [x for c in d for x in onehot(c, S)]) for s in states.tolist()]
    np.testing.assert_array_equal(dyn.observe(states, "vector"), np.array(want, np.float32))
    np.testing.assert_array_equal(dyn.observe(states, "own"), states)  # own cell


def test_default_modes_and_spaces_unchanged():
    assert congestion_v0.parallel_env().observation_mode == "state"
    assert coordination_v0.parallel_env().observation_mode == "state"
    assert distancing_v0.parallel_env().observation_mode == "state"
    assert multitask_gridworld_v0.parallel_env().observation_mode == "own"
    assert coordination_v0.parallel_env(observation="vector").observation_space("agent_0").shape == (6,)
    assert coordination_v0.parallel_env(n_agents=5, observation="onehot").observation_space(
        "agent_0"
    ).shape == (32,)
    env = distancing_v0.parallel_env()
    assert "own" not in env.dynamics.observation_modes and env.own_observation_size is None
    assert env.state_space.shape == (2,)


# ---------------------------------------------------------------------------- the single-task env
@pytest.mark.parametrize("mode", ["own", "state", "onehot", "vector"])
def test_gridworld_task_env_observations_come_from_the_dynamics(mode):
    env = gymnasium.make("mpg/GridWorldTask-v0", layout=["S..#/.W.G/...."], slip=0.3, observation=mode)
    u = env.unwrapped
    assert env.observation_space == u.dynamics.observation_space(mode)
    obs, info = env.reset(seed=3)
    rng = np.random.default_rng(3)
    for _ in range(200):
        want = u.dynamics.observe(np.array([[info["cell"]]]), mode)[0, 0]
        if mode in ("own", "state"):
            assert type(obs) is int and obs == info["cell"] == want
        else:
            assert obs.dtype == np.float32 and np.array_equal(obs, want)
            assert obs[-u.task.n_cells :].argmax() == info["cell"]
        assert env.observation_space.contains(obs)
        obs, _, term, trunc, info = env.step(int(rng.integers(u.task.n_actions)))
        if term or trunc:
            obs, info = env.reset()


def test_gridworld_task_env_bad_observation():
    with pytest.raises(
        ValueError, match=r"observation must be one of \['state', 'vector', 'own', 'onehot'\]"
    ):
        gymnasium.make("mpg/GridWorldTask-v0", observation="pixels")


# ---------------------------------------------------------------------------- a user's dynamics
class Counter(Dynamics):
    """A 1-agent counter mod S (the default state features and no "own" mode)."""

    def __init__(self, n_states: int = 5, n_agents: int = 1) -> None:
        self._S = n_states
        self.n_agents = n_agents
        self.action_sizes = (2,) * n_agents
        self.state_dim = 1

    @property
    def n_states(self) -> int:
        return self._S

    def states(self) -> np.ndarray:
        return np.arange(self._S)[:, None]

    def index(self, states: np.ndarray) -> np.ndarray:
        s = np.asarray(states, dtype=np.int64)[:, 0]
        return np.where((s >= 0) & (s < self._S), s, -1)

    def decode(self, indices: np.ndarray) -> np.ndarray:
        return np.asarray(indices, dtype=np.int64)[:, None]

    def initial_distribution(self) -> tuple[np.ndarray, np.ndarray]:
        return np.zeros((1, 1), np.int64), np.ones(1)

    def step(self, states, actions, noise):
        return (states + actions[:, :1]) % self._S, np.zeros((len(states), self.n_agents))

    def terminal(self, states: np.ndarray) -> np.ndarray:
        return np.zeros(len(states), bool)


class CounterEnv(MPGParallelEnv):
    metadata = {"render_modes": ["ansi"], "name": "counter_v0"}

    def __init__(self, dynamics: Dynamics | None = None, **kw) -> None:
        super().__init__(dynamics or Counter(), gamma=0.9, max_cycles=5, **kw)


def test_default_state_features_are_the_one_hot_of_the_model_index():
    dyn = Counter(5, n_agents=2)
    assert dyn.observation_modes == ("state", "vector", "onehot") and dyn.n_state_features == 5
    np.testing.assert_array_equal(
        dyn.state_features(np.array([[3], [0]])), np.eye(5, dtype=np.float32)[[3, 0]]
    )
    vec = dyn.observe(np.array([[3]]), "vector")[0]
    np.testing.assert_array_equal(vec, [[1, 0, 0, 0, 0, 1, 0], [0, 1, 0, 0, 0, 1, 0]])
    env = CounterEnv(observation="vector")
    obs, _ = env.reset()
    np.testing.assert_array_equal(obs["agent_0"], [1, 1, 0, 0, 0, 0])
    assert env.state_space.shape == (5,)
    with pytest.raises(ValueError, match="Counter has no local observation"):
        dyn.own_observation(np.array([[0]]))


def test_default_state_features_refuse_too_many_states():
    dyn = Counter(MAX_ONEHOT_STATES + 1)
    msg = r"default state features .* of Counter would have S=65,537 entries, over the limit of MAX_ONEHOT"
    for call in (
        lambda: dyn.n_state_features,
        lambda: dyn.state_features(np.array([[0]])),
        lambda: dyn.observe(np.array([[0]]), "vector"),
        lambda: CounterEnv(dyn),
    ):
        with pytest.raises(ValueError, match=msg):
            call()
    np.testing.assert_array_equal(dyn.observe(np.array([[7]]), "state"), [[7]])  # index modes still work


def test_env_subclass_overriding_an_old_hook_is_refused():
    class Legacy(CounterEnv):
        def state_features(self, states):
            return np.zeros((len(states), 1), np.float32)

    with pytest.raises(
        TypeError, match="Legacy overrides state_features.* define state_features on the Dynamics"
    ):
        Legacy()


# ---------------------------------------------------------------------------- vectorisation
class Spy:
    """Counts the calls of a dynamics' observation hooks and the rows they see."""

    def __init__(self, dyn: Dynamics) -> None:
        self.rows: list[int] = []
        for hook in ("state_features", "own_observation"):
            fn = getattr(dyn, hook)

            def wrapped(states, fn=fn):
                self.rows.append(len(states))
                return fn(states)

            setattr(dyn, hook, wrapped)


@pytest.mark.parametrize(
    "make",
    [
        lambda: congestion_v0.parallel_env(n_agents=8),
        lambda: coordination_v0.parallel_env(n_agents=8),
        lambda: multitask_gridworld_v0.parallel_env(),
        lambda: distancing_v0.parallel_env(),
    ],
)
def test_observe_is_one_vectorised_call_per_batch(make):
    """B = 4096 states: each hook runs once on the whole batch, and row b is ``observe`` of state b."""
    dyn = make().dynamics
    rng = np.random.default_rng(0)
    states = dyn.sample_initial(4096, rng)
    for _ in range(3):  # spread over the state space
        acts = rng.integers(0, dyn.action_sizes, size=(4096, dyn.n_agents))
        states = dyn.step(states, acts, np.zeros((4096, len(dyn.noise_probs)), np.int64))[0]
    rows = rng.choice(4096, 20, replace=False)
    modes = [m for m in dyn.observation_modes if m != "onehot" or dyn.n_states <= MAX_ONEHOT_STATES]
    single = {m: np.stack([dyn.observe(states[b : b + 1], m)[0] for b in rows]) for m in modes}
    spy = Spy(dyn)
    for mode in modes:
        spy.rows.clear()
        out = dyn.observe(states, mode)
        assert len(out) == 4096
        assert spy.rows == {"vector": [4096], "own": [4096]}.get(mode, [])
        np.testing.assert_array_equal(out[rows], single[mode])
        np.testing.assert_array_equal(dyn.observe(states, mode, indices=dyn.index(states)), out)


# ---------------------------------------------------------------------------- errors
def test_bad_mode_names_the_value_and_the_modes():
    dyn = congestion_v0.parallel_env(n_agents=3).dynamics
    st = dyn.states()[:2]
    assert OBS_MODES == ("state", "vector", "own", "onehot")
    for bad in ("pixels", None, 1, "STATE", ["state"], np.array(["state", "own"])):
        with pytest.raises(
            ValueError, match=r"mode must be one of \['state', 'vector', 'own', 'onehot'\], got "
        ):
            dyn.observe(st, bad)
        with pytest.raises(ValueError, match=r"must be one of"):
            dyn.observation_space(bad)
    ddyn = distancing_v0.parallel_env().dynamics
    with pytest.raises(
        ValueError, match=r"\['state', 'vector', 'onehot'\], got 'own' \(DistancingDynamics has no"
    ):
        ddyn.observe(ddyn.states(), "own")
    with pytest.raises(ValueError, match=r"observation must be one of .* got 'own' \(DistancingDynamics"):
        distancing_v0.parallel_env(observation="own")
    with pytest.raises(
        ValueError, match=r"observation_index supports the modes \['state', 'own'\], got 'vector'"
    ):
        congestion_v0.parallel_env().observation_index("vector")
    with pytest.raises(ValueError, match=r"observation_index supports the modes \['state'\], got 'own'"):
        distancing_v0.parallel_env().observation_index("own")


def test_bad_states_and_indices():
    dyn = congestion_v0.parallel_env(n_agents=3).dynamics
    with pytest.raises(
        ValueError, match=r"states must be an integer array of shape \(B, d=3\), got shape \(3,\)"
    ):
        dyn.observe(np.array([0, 0, 0]), "state")
    with pytest.raises(
        ValueError, match=r"states must be an integer array of shape \(B, d=3\), got .*dtype float"
    ):
        dyn.observe(np.zeros((1, 3)), "vector")
    with pytest.raises(ValueError, match=r"states\[1\] = \[1, 2, 5\] is not a state of these dynamics"):
        dyn.observe(np.array([[0, 0, 0], [1, 2, 5]]), "own")  # agents in different layers
    with pytest.raises(ValueError, match=r"indices must have shape \(B,\) = \(2,\), got shape \(1,\)"):
        dyn.observe(dyn.states()[:2], "onehot", indices=[0])
    with pytest.raises(ValueError, match=r"states\[0\] = \[0, 0, 0\] is not a state"):
        dyn.observe(dyn.states()[:1], "onehot", indices=[dyn.n_states])
    assert dyn.observe(np.zeros((0, 3), np.int64), "vector").shape == (0, 3, 3 + dyn.n_state_features)


def test_oversize_requests_are_refused_before_allocating():
    with pytest.raises(
        ValueError, match=r"observation='onehot' .* of MultiTaskDynamics would have S=100,000,000 "
    ):
        multitask_gridworld_v0.parallel_env(observation="onehot")  # 4 tasks of 100 cells
    grid = multitask_gridworld_v0.parallel_env().dynamics
    with pytest.raises(
        ValueError, match=r"mode='onehot' .* over the limit of MAX_ONEHOT_STATES=65,536 states"
    ):
        grid.observation_shape("onehot")
    with pytest.raises(ValueError, match=r"over the limit of MAX_ONEHOT_STATES"):
        grid.observe(np.zeros((1, 4), np.int64), "onehot")
    with pytest.raises(
        ValueError, match=rf"500,000,000 floats per step, over the limit of {MAX_OBSERVATION_FLOATS:,}"
    ):
        congestion_v0.parallel_env(n_agents=10**4, width=1, observation="vector")
    dyn = coordination_v0.parallel_env(n_agents=8).dynamics  # one-hot: 8 agents x 256 floats per state
    per = 8 * 256
    fit = MAX_OBSERVATION_BATCH_FLOATS // per
    states = np.zeros((fit + 1, 8), np.int64)
    with pytest.raises(ValueError, match=rf"pass at most {fit:,} states per call"):
        dyn.observe(states, "onehot")
    assert dyn.observe(states[:2], "onehot").shape == (2, 8, 256)
