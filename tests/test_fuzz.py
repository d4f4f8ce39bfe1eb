"""Bad input gets a clear error that names the bad value; valid edge input is accepted and correct.

Every size guard here must fire before anything large is allocated, so the file stays fast.
``tools/fuzz_audit.py`` runs a larger set of such inputs, each in a memory- and time-limited
subprocess.
"""

from __future__ import annotations

import re

import gymnasium
import numpy as np
import pytest
import scipy.sparse as sp

from mpg_envs import (
    ModelTooLargeError,
    TabularModel,
    congestion_v0,
    coordination_v0,
    distancing_v0,
    exact,
    multitask_gridworld_v0,
)
from mpg_envs.core import sample_initial, sample_step
from mpg_envs.gridworld import GridSpec, GridWorldTaskEnv, Task, chain_tasks

cong = congestion_v0.parallel_env
dist = distancing_v0.parallel_env
coord = coordination_v0.parallel_env
grid = multitask_gridworld_v0.parallel_env


def esc(text: str) -> str:
    return re.escape(text)


def _model_args(**over):
    """A valid 2-state, 2-agent TabularModel's arguments, with some replaced."""
    args = dict(
        n_agents=2,
        action_sizes=(2, 2),
        P=np.tile([0.5, 0.5], (8, 1)),
        R=np.zeros((2, 2, 4)),
        mu=[0.5, 0.5],
        gamma=0.9,
    )
    args.update(over)
    return args


@pytest.fixture(scope="module")
def small():
    """2-agent congestion model: S = 10, actions (2, 2)."""
    return cong(n_agents=2, gamma=0.9).model()


# ------------------------------------------------------------------------------------- envs
@pytest.mark.parametrize(
    "make, kw, match",
    [
        (cong, {"n_agents": True}, "n_agents must be a positive integer, got True"),
        (cong, {"n_agents": 2.5}, "n_agents must be a positive integer, got 2.5"),
        (cong, {"width": True}, "width must be a positive integer, got True"),
        (cong, {"n_layers": "2"}, "n_layers must be a positive integer, got '2'"),
        (cong, {"slip": True}, esc("slip must be a probability in [0, 1], got True")),
        (cong, {"slip": "0.1"}, esc("slip must be a probability in [0, 1], got '0.1'")),
        (cong, {"slip": None}, esc("slip must be a probability in [0, 1], got None")),
        (cong, {"gamma": True}, esc("gamma must be a number in (0, 1], got True")),
        (cong, {"gamma": "0.9"}, esc("gamma must be a number in (0, 1], got '0.9'")),
        (cong, {"gamma": np.int64(1)}, esc("(got gamma=np.int64(1))")),
        (cong, {"max_cycles": True}, "max_cycles must be a positive integer, got True"),
        (cong, {"max_cycles": 2.5}, "max_cycles must be a positive integer, got 2.5"),
        (cong, {"restart_reward": float("nan")}, "restart_reward must be a finite number, got nan"),
        (cong, {"reward": True}, "reward must be .* got True"),
        (cong, {"reward": [True, False, True, False]}, "contains the bool True"),
        (cong, {"load": None}, esc("load must be one of ['edge', 'vertex'], got None")),
        (cong, {"observation": None}, "observation must be one of .* got None"),
        (cong, {"render_mode": True}, "render_mode must be None or one of .* got True"),
        (cong, {"n_agents": 10**6}, "n_agents must be a positive integer of at most 100,000, got 1000000"),
        (cong, {"n_agents": 100}, "with 100 agents give .* states, over the limit"),
        (cong, {"n_agents": 3000, "width": 3}, r"~10\^1432 states, over the limit"),
        (cong, {"width": 10**5, "n_agents": 1}, "10,000,200,001 edges, over the limit"),
        (
            cong,
            {"width": 300, "n_agents": 1, "render_mode": "rgb_array"},
            "90,601 edges, over the limit of 1,000",
        ),
        (
            cong,
            {"n_agents": 10**4, "width": 1, "observation": "vector"},
            "500,000,000 floats per step, over the limit",
        ),
        (dist, {"weights": [True, 2.0]}, "contains the bool True"),
        (dist, {"weights": []}, esc("got []")),
        (dist, {"mu": (True, False)}, "contains the bool True"),
        (dist, {"penalty": True}, "penalty must be a finite number, got True"),
        (dist, {"safe_threshold": True}, "safe_threshold must be .* got True"),
        (dist, {"n_agents": 10**8}, "at most 100,000, got 100000000"),
        (dist, {"n_agents": 10**4, "render_mode": "rgb_array"}, "20,522,616 pixels is over the limit"),
        (coord, {"n_agents": True}, esc("n_agents must be an integer in [2, 8]")),
        (coord, {"eps": True}, esc("eps must be a probability in [0, 1], got True")),
        (coord, {"gamma": True}, esc("gamma must be a number in (0, 1), got True")),
        (coord, {"gamma": np.int64(1)}, "gamma = 1 gives infinite returns"),
        (grid, {"slip": True}, esc("slip must be a probability in [0, 1], got True")),
        (grid, {"slip": np.nan}, esc("slip must be a probability in [0, 1], got nan")),
        (grid, {"layout": "chain_slip", "chain_p": True}, "chain_p must be a probability .* got True"),
        (grid, {"layout": 5}, "layout must be a layout name .* got 5"),
        (grid, {"layout": ["S.G", 3]}, "item 3 is not a str"),
        (grid, {"layout": ["S" + "." * 10**6 + "G"]}, "1,000,002 cells, over the limit of 1,600"),
        (grid, {"layout": ["S.G"] * 1000}, r"1,000 tasks of 3 cells give ~10\^477 joint states"),
        (grid, {"gamma": True}, esc("gamma must be a number in (0, 1), got True")),
    ],
)
def test_bad_env_arguments(make, kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make(**kw)


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"max_steps": True}, "max_steps must be a positive integer, got True"),
        ({"task": True}, esc("task must be an index in [0, 4), got True")),
        ({"slip": True}, "slip must be a probability .* got True"),
        ({"render_mode": "human"}, "render_mode must be None or one of .* got 'human'"),
    ],
)
def test_bad_gridworld_task_arguments(kw, match):
    with pytest.raises((ValueError, TypeError), match=match):
        GridWorldTaskEnv(**kw)


@pytest.mark.parametrize(
    "call, exc, match",
    [
        (lambda e: e.reset(seed=True), TypeError, "seed must be None or a non-negative integer, got True"),
        (lambda e: e.reset(seed=-1), ValueError, "got -1"),
        (lambda e: e.reset(seed=1.5), TypeError, "got 1.5"),
        (lambda e: e.reset(options=[1]), TypeError, esc("options must be None or a dict")),
        (lambda e: e.reset(options={"state": True}), ValueError, "got True"),
        (lambda e: e.reset(options={"state": 2**70}), ValueError, "got 1180591620717411303424"),
        (lambda e: e.reset(options={"state": np.array([0, 3])}), ValueError, esc("array([0, 3])")),
        (lambda e: e.step({"agent_0": True, "agent_1": 0}), TypeError, "got True"),
        (lambda e: e.step({"agent_0": 1.0, "agent_1": 0}), TypeError, "got 1.0"),
        (lambda e: e.step({"agent_0": 2, "agent_1": 0}), ValueError, esc("must be in [0, 2), got 2")),
        (lambda e: e.model(max_transitions=True), TypeError, "max_transitions must be .* got True"),
        (lambda e: e.model(max_transitions=10), ModelTooLargeError, "max_transitions=10"),
    ],
)
def test_bad_reset_step_and_model_calls(call, exc, match):
    env = cong(n_agents=2)
    env.reset(seed=0)
    with pytest.raises(exc, match=match):
        call(env)


def test_aec_checks_each_action_when_given():
    env = congestion_v0.env(n_agents=2)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=esc("action for agent_0 must be in [0, 2), got 5")):
        env.step(5)


def test_walls_cannot_start_an_episode():
    with pytest.raises(ValueError, match="cell 2 .* is a wall"):
        grid(layout=["S.W.G"]).reset(options={"state": np.array([2])})
    with pytest.raises(ValueError, match="cell 2 .* is a wall"):
        GridWorldTaskEnv(layout=["S.W.G"]).reset(options={"state": 2})


def test_gridworld_task_refuses_steps_after_truncation():
    env = GridWorldTaskEnv(max_steps=1)
    env.reset(seed=0)
    *_, terminated, truncated, _ = env.step(2)
    assert truncated and not terminated
    with pytest.raises(RuntimeError, match="after the episode truncated"):
        env.step(2)
    env.reset(seed=0)
    env.step(2)  # a new episode steps again


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: Task(np.full((2, 1, 2), np.nan), np.zeros(2), np.zeros(2, bool), [1.0, 0.0], (1, 2)), "nan"),
        (lambda: Task(np.full((2, 1, 2), 0.6), np.zeros(2), np.zeros(2, bool), [1.0, 0.0], (1, 2)), "0.6"),
        (lambda: GridSpec((3, 3), goals=((1, 1.5),)), esc("(1, 1.5)")),
        (lambda: GridSpec((3.0, 3)), esc("(3.0, 3)")),
        (lambda: GridSpec((10**6, 10**6)), "1,000,000,000,000 cells, over the limit"),
        (lambda: chain_tasks("slip", True), "p must be a probability .* got True"),
    ],
)
def test_bad_gridworld_building_blocks(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


# ------------------------------------------------------------------------------------- model
@pytest.mark.parametrize(
    "over, match",
    [
        ({"n_agents": True}, "n_agents must be a positive integer, got True"),
        ({"action_sizes": (2.7, 2.2)}, esc("got (2.7, 2.2)")),
        ({"action_sizes": (True, True)}, esc("got (True, True)")),
        ({"action_sizes": 3}, "action_sizes must be .* got 3"),
        ({"gamma": True}, esc("gamma must be a number in (0, 1], got True")),
        ({"gamma": "0.9"}, "got '0.9'"),
        ({"mu": [True, False]}, "contains the bool True"),
        ({"mu": [-0.5, 1.5]}, esc("mu must be non-negative, got mu[0] = -0.5")),
        ({"mu": None}, "mu must be .* got None"),
        ({"P": np.tile([1.2, -0.2], (8, 1))}, esc("P[0, 1] = -0.2")),
        ({"P": "x"}, "P must be .* got 'x'"),
        ({"R": np.full((2, 2, 4), np.inf)}, esc("R[0, 0, 0] = inf")),
        ({"terminal": np.array([0, 1])}, "got dtype int64"),
        ({"phi": np.full((2, 4), np.nan)}, esc("phi[0, 0] = nan")),
        ({"states": np.array([[0, 1], [0, 1]])}, esc("rows 0 and 1 are both [0, 1]")),
        ({"states": np.array([[0.5], [1.5]])}, "got dtype float64"),
        ({"name": 3}, "name must be a str, got 3"),
    ],
)
def test_bad_model_fields(over, match):
    with pytest.raises((ValueError, TypeError), match=match):
        TabularModel(**_model_args(**over))


def test_bad_model_conversions(small):
    with pytest.raises(ValueError, match=esc("state index must be in [0, 10), got True")):
        small.state_of(True)
    with pytest.raises(ValueError, match=esc("got [0, 2]")):
        small.joint_index([0, 2])


# ------------------------------------------------------------------------------------- exact
@pytest.mark.parametrize(
    "call, match",
    [
        (lambda m: exact.random_policy(m, True), "rng must be .* got True"),
        (lambda m: exact.random_policy(m, "a"), "rng must be .* got 'a'"),
        (lambda m: exact.random_policy(m, -1), "rng must be .* got -1"),
        (lambda m: exact.cycle_residual(m, 1.5), "rng must be .* got 1.5"),
        (lambda m: exact.potential_residual(m, [1]), esc("got [1]")),
        (lambda m: exact.potential_residual(m, 0, n_samples=True), "n_samples must be .* got True"),
        (lambda m: exact.cycle_residual(m, 0, n_cycles=10**13), "at most 1,000,000, got 10000000000000"),
        (lambda m: exact.random_policy(m, 0, agents=[True]), "agents must be .* got True"),
        (lambda m: exact.random_policy(m, 0, deterministic="yes"), "deterministic must be .* got 'yes'"),
        (
            lambda m: exact.best_response(m, exact.uniform_policy(m), True),
            esc("agent must be in [0, 2), got True"),
        ),
        (lambda m: exact.best_response(m, exact.uniform_policy(m), 2), esc("agent must be in [0, 2), got 2")),
        (
            lambda m: exact.occupancy(m, exact.uniform_policy(m), mu=np.r_[-1.0, 2.0, np.zeros(8)]),
            "mu\\[0\\] = -1.0",
        ),
        (lambda m: exact.occupancy(m, exact.uniform_policy(m), mu=np.ones(10)), "got a sum of 10.0"),
        (lambda m: exact.visitation(m, exact.uniform_policy(m), mu=[1.0, 0.0]), esc("got shape (2,)")),
        (lambda m: exact.evaluate(m, None), "policies must be .* got None"),
        (lambda m: exact.evaluate(m, {"agent_0": 1}), esc("got {'agent_0': 1}")),
        (lambda m: exact.evaluate(m, [np.full((10, 2), "a")] * 2), "contains 'a'"),
        (lambda m: exact.evaluate(m, [np.eye(2, dtype=bool)[np.zeros(10, int)]] * 2), "dtype bool"),
        (lambda m: exact.nash_gap(m, [np.full((10, 2), np.nan)] * 2), esc("row 0 = [nan, nan]")),
        (lambda m: exact.evaluate(m, [np.full((10, 2), 0.501, np.float32)] * 2), "row 0 sums to 1.00"),
        (lambda m: exact.random_policy(m, 0, obs_map=np.full((2, 10), 10**12)), "= 1000000000000"),
        (lambda m: exact.cycle_residual(m, 0, obs_map="own"), "obs_map must be .* got 'own'"),
        (lambda m: exact.joint_q(m, np.zeros((2, 3))), esc("got (2, 3)")),
        (lambda m: exact.price_of_anarchy(m, exact.uniform_policy(m), optimum="x"), "got 'x'"),
        (lambda m: exact.evaluate("x", []), "model must be a mpg_envs.TabularModel, got 'x'"),
    ],
)
def test_bad_exact_arguments(small, call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call(small)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: exact.softmax_policy([np.array([[np.nan, 0.0]])]), esc("row 0 = [nan, 0.0]")),
        (lambda: exact.softmax_policy(None), "logits must be .* got None"),
        (lambda: exact.l1_distance([np.full((2, 2), np.nan)], [np.ones((2, 2))]), "= nan"),
        (lambda: exact.multitask_value("x", np.ones((5, 2)) / 2), "got 'x'"),
    ],
)
def test_bad_exact_arguments_without_model(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_bad_sampling_arguments():
    d = cong(n_agents=2).dynamics
    st = d.states()[:1]
    with pytest.raises(TypeError, match="rng must be .* got 'x'"):
        sample_step(d, st, np.zeros((1, 2), int), "x")
    with pytest.raises(ValueError, match=esc("actions[0, 0] = 5 is out of range")):
        sample_step(d, st, np.full((1, 2), 5), 0)
    with pytest.raises(ValueError, match=esc("states[0] = [0, 99]")):
        sample_step(d, np.array([[0, 99]]), np.zeros((1, 2), int), 0)
    with pytest.raises(ValueError, match="n must be an integer >= 0, got -1"):
        sample_initial(d, -1, 0)


# ------------------------------------------------------------------------------------- accepted
def _float32(policies):
    return [p.astype(np.float32) for p in policies]


@pytest.mark.parametrize("make", [lambda: cong(n_agents=3, gamma=0.99), lambda: dist(n_agents=3, gamma=0.9)])
def test_float32_policies_give_the_float64_values(make):
    m = make().model()
    k = m.action_sizes[0]
    p = exact.random_policy(m, np.random.default_rng(7))
    for fn in (exact.evaluate, exact.policy_gradient, exact.advantages):
        x64, x32 = fn(m, p), fn(m, _float32(p))
        scale = max(1.0, max(float(np.abs(a).max()) for a in np.atleast_1d(x64)))
        for a, b in zip(np.atleast_1d(x64), np.atleast_1d(x32)):
            np.testing.assert_allclose(b, a, atol=1e-6 * scale)
    assert exact.nash_gap(m, _float32(p)).gap == pytest.approx(exact.nash_gap(m, p).gap, rel=1e-6, abs=1e-6)
    softmax32 = _float32(exact.softmax_policy([np.random.default_rng(1).normal(size=(m.n_states, k))] * 3))
    exact.check_policy(m, softmax32)  # float32 softmax rows sum to 1 only within float32 round-off


def test_float32_model_arrays_accepted():
    P = np.full((8, 2), 0.3, np.float32) + np.array([0.0, 0.4], np.float32)
    m = TabularModel(**_model_args(P=P, mu=np.array([0.1, 0.9], np.float32)))
    assert np.abs(np.asarray(m.P.sum(axis=1)).ravel() - 1).max() < 1e-12 and abs(m.mu.sum() - 1) < 1e-12
    dist(mu=np.array([0.1, 0.9], np.float32))


def test_numpy_integer_seeds_gamma_and_start_states():
    a, b = cong(n_agents=3), cong(n_agents=3)
    a.reset(seed=np.int64(3))
    b.reset(seed=3)
    for _ in range(5):
        acts = {ag: 1 for ag in a.agents}
        assert a.step(acts)[0] == b.step(acts)[0]
    coord().reset(seed=np.uint32(7))
    task = gymnasium.make("mpg/GridWorldTask-v0")
    assert task.reset(seed=np.int64(5)) == gymnasium.make("mpg/GridWorldTask-v0").reset(seed=5)
    env = cong(gamma=np.int64(1), at_sink="terminate", n_agents=2, max_cycles=np.int64(5))
    assert env.gamma == 1.0 and env.max_cycles == 5 and env.model().gamma == 1.0
    env.reset(options={"state": np.array(3)})
    assert env.state_index() == 3
    env.reset(options={"state": np.int32(4)})
    assert env.state_index() == 4
    assert GridWorldTaskEnv().reset(options={"state": np.array(5)})[0] == 5
    P = np.zeros((8, 2))
    P[:, 1] = 1.0
    m = TabularModel(**_model_args(P=P, terminal=np.array([False, True]), gamma=np.int64(1)))
    assert m.gamma == 1.0 and type(m.gamma) is float


def test_int_and_none_rng_accepted(small):
    seeded = exact.random_policy(small, 0)
    for x, y in zip(seeded, exact.random_policy(small, np.random.default_rng(0))):
        np.testing.assert_array_equal(x, y)
    assert exact.random_policy(small, np.int64(0))[0].shape == (10, 2)
    assert exact.random_policy(small, None)[1].shape == (10, 2)
    c0 = exact.potential_residual(small, 0, n_samples=2)
    assert (
        c0.max_residual == exact.potential_residual(small, np.random.default_rng(0), n_samples=2).max_residual
    )
    assert exact.cycle_residual(small, 0, n_cycles=2).residuals.shape == (2,)
    assert sample_initial(small_dynamics := cong(n_agents=2).dynamics, 3, None).shape == (3, 2)
    assert small_dynamics.sample_initial(2, 0).shape == (2, 2)


def test_nash_gap_never_negative():
    m = coord(n_agents=3).model()
    g = exact.nash_gap(m, [np.eye(2)[np.zeros(m.n_states, int)]] * 3)  # everybody plays 0: an equilibrium
    assert g.gap >= 0 and g.worst >= 0
    assert (g.per_state >= 0).all() and (g.at_mu >= 0).all() and (g.worst_state >= 0).all()
    assert g.gap < 1e-9


def test_slip_applies_to_chain_layouts():
    for layout in ("chain_reversed", "chain_slip"):
        p0 = grid(layout=layout, gamma=0.9).model().P
        p1 = grid(layout=layout, gamma=0.9, slip=0.5).model().P
        assert (p0 != p1).nnz > 0
    moved = chain_tasks("reversed", slip=0.5)[0].P[2]  # from S_3: the chosen move 3/4 of the time
    np.testing.assert_allclose(moved, [[0, 0.75, 0, 0.25, 0], [0, 0.25, 0, 0.75, 0]])


@pytest.mark.parametrize(
    "make",
    [
        lambda: cong(width=30, n_agents=1, gamma=0.9),
        lambda: cong(width=4, n_agents=2, load="vertex", gamma=0.9),
        lambda: dist(n_agents=3, weights=(1.0, 2.0, 3.0, 4.0, 5.0, 6.0), gamma=0.9),
    ],
)
def test_sorted_counts_match_dense_counts(monkeypatch, make):
    """Above a size, loads and counts come from sorting instead of a dense histogram: same model."""
    dense = make().model()
    import mpg_envs.congestion.dynamics as cd
    import mpg_envs.distancing.dynamics as dd

    monkeypatch.setattr(cd, "_DENSE_COUNT_LIMIT", 0)
    monkeypatch.setattr(dd, "_DENSE_COUNT_LIMIT", 0)
    counted = make().model()
    assert (dense.P != counted.P).nnz == 0
    np.testing.assert_allclose(counted.R, dense.R, rtol=0, atol=1e-12)
    np.testing.assert_allclose(counted.phi, dense.phi, rtol=0, atol=1e-9)


def test_gamma_one_check_on_a_long_chain():
    S = 20_000
    rows = np.arange(S)
    P = sp.csr_matrix((np.ones(S), (rows, np.minimum(rows + 1, S - 1))), shape=(S, S))
    term = np.zeros(S, bool)
    term[-1] = True
    mu = np.zeros(S)
    mu[0] = 1.0
    args = dict(n_agents=1, action_sizes=(1,), R=np.zeros((1, S, 1)), mu=mu, gamma=1.0, terminal=term)
    assert TabularModel(P=P, **args).gamma == 1.0
    loop = P.tolil()
    loop[S // 2, S // 2 + 1] = 0.0
    loop[S // 2, S // 2] = 1.0
    with pytest.raises(
        ValueError, match=f"stay forever among {S // 2 + 1} non-terminal states .e.g. state 0"
    ):
        TabularModel(P=loop.tocsr(), **args)


def test_many_agents_and_many_facilities_build():
    m = cong(width=1, n_agents=200, n_layers=2, gamma=0.9).model()  # 200 agents > NumPy's 64 dimensions
    assert m.n_joint_actions == 1 and m.joint_index(np.zeros(200, int)) == 0
    d = dist(n_agents=1, weights=np.arange(1.0, 1001.0)).model()  # one agent, 1000 facilities
    assert d.n_joint_actions == 1000


# ------------------------------------------------------------------------------------- CLI
@pytest.mark.parametrize(
    "argv, match",
    [
        (
            ["train", "--env-kwargs", "n_agent=4"],
            "unknown env keyword argument(s) ['n_agent'] for mpg/Congestion-v0",
        ),
        (["train", "--env-kwargs", "n_agents=True"], "n_agents must be a positive integer, got True"),
        (["train", "--env-kwargs", "slip=True"], "slip must be a probability in [0, 1], got True"),
        (["train", "--env-kwargs", "graph=loop"], "graph must be one of ['dag', 'ring'], got 'loop'"),
        (["train", "--stop-l1", "nan"], "stop_l1 must be a finite number >= 0, got nan"),
        (["train", "--stop-l1", "-1"], "stop_l1 must be a finite number >= 0, got -1.0"),
        (["train", "--eta", "inf"], "eta must be a finite number > 0, got inf"),
        (["train", "--log-barrier", "nan"], "log_barrier must be a finite number >= 0, got nan"),
        (
            ["train", "--algo", "ppg", "--log-barrier", "0.1"],
            "--log-barrier is not an option of ppg",
        ),
        (["train", "--stop-rule", "never"], "unknown stop_rule 'never'"),
        (["train", "--estimator", "magic"], "unknown estimator 'magic'"),
        (["train", "--init", "zeros"], "init must be 'normal', 'uniform' or 'torch', got 'zeros'"),
        (["train", "--seeds", "1", "1"], "seeds must be distinct integers >= 0, got [1, 1]"),
        (["train", "--horizon", "0", "--estimator", "sampled"], "horizon must be an integer >= 1, got 0"),
        (
            ["train", "--inner-steps", "0", "--algo", "npg_br"],
            "inner_steps (K) must be a positive integer, got 0",
        ),
        (["train", "--out", "/proc/no-such-dir"], "out '/proc/no-such-dir': cannot create the run folder"),
        (
            ["train", "--resume", "/no/such/run"],
            "resume: '/no/such/run' is not a run folder (no config.json)",
        ),
        (["train", "--resume", "/no/such/run", "--eta", "5"], "options cannot be changed (got --eta)"),
        (["train", "--resume", "/no/such/run", "--iters", "5"], "'/no/such/run' is not a run folder"),
        (["train", "--estimator", "forced", "--env-kwargs", "n_agents=20"], "S=2,097,154 states"),
        (["reproduce", "fox2022-congestion", "--seeds", "-1"], "seeds must be integers >= 0, got -1"),
        (["reproduce", "fox2022-congestion", "--seeds", "2", "2"], "seeds must be distinct, got [2, 2]"),
        (["reproduce", "fox2022-congestion", "--workers", "0"], "workers must be an integer >= 1, got 0"),
        (["reproduce", "fox2022-congestion", "--docs"], "docs: the committed documentation"),
        (["reproduce", "all", "--full", "--docs", "/no/such/repo"], "got '/no/such/repo'"),
    ],
)
def test_bad_cli_input_exits_2_naming_the_value(tmp_path, capsys, argv, match):
    from baselines.cli import main

    own = {"--out", "--docs", "--resume"} & set(argv)
    out = [] if own else ["--out", str(tmp_path / "out")]
    assert main([*argv, *out, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and match in err, err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("config.json"))


def test_resume_of_a_finished_run_is_refused(tmp_path, capsys):
    from baselines.cli import main

    assert main(["train", "--iters", "2", "--out", str(tmp_path), "--no-progress"]) == 0
    run = next(tmp_path.iterdir())
    assert main(["train", "--resume", str(run), "--no-progress"]) == 2
    assert f"the run in '{run}' is finished" in capsys.readouterr().err


# ------------------------------------------------------------------------------ RL-library glue
def test_pickled_copies_draw_their_own_streams_unless_seeded_alike():
    import pickle

    from mpg_envs import multitask_gridworld_v0

    fresh = multitask_gridworld_v0.parallel_env(layout="no_conflict", slip=0.5)
    copies = [pickle.loads(pickle.dumps(fresh)) for _ in range(4)]  # how SuperSuit copies an env

    def trajectory(env, seed=None):
        env.reset(seed=seed)
        cells = []
        for _ in range(30):
            if not env.agents:
                break
            _, _, _, _, info = env.step({a: 3 for a in env.agents})
            cells.append(tuple(i["cell"] for i in info.values()))
        return cells

    unseeded = [trajectory(c) for c in copies]
    assert len({tuple(t) for t in unseeded}) == 4  # 4 copies, 4 different noise streams
    seeded = [trajectory(pickle.loads(pickle.dumps(fresh)), seed=7) for _ in range(2)]
    assert seeded[0] == seeded[1]


def test_time_limit_truncates_every_live_agent_even_one_that_terminates_then():
    from mpg_envs import multitask_gridworld_v0

    # first chain: task 1's agent reaches its goal S1 from S3 in two L steps -- at the time limit
    env = multitask_gridworld_v0.parallel_env(layout="chain_reversed", max_cycles=2)
    env.reset(seed=0)
    env.step({"agent_0": 0, "agent_1": 1})
    _, rew, term, trunc, _ = env.step({"agent_0": 0, "agent_1": 1})
    assert rew["agent_0"] == 1.0 and term["agent_0"] is True
    assert trunc == {"agent_0": True, "agent_1": True} and env.agents == []  # all(truncations): ends


def test_render_accepts_the_old_positional_mode(recwarn):
    from mpg_envs import coordination_v0

    env = coordination_v0.parallel_env(render_mode="ansi")
    env.reset(seed=0)
    assert env.render("ansi") == env.render()
    assert isinstance(env.render("human"), str)  # the env's own render_mode decides ...
    assert any("render('human') ignored" in str(w.message) for w in recwarn.list)  # ... and says so


def test_state_observation_too_large_for_one_hot_warns():
    from mpg_envs import multitask_gridworld_v0

    with pytest.warns(UserWarning, match=r"Discrete\(100,000,000\).*observation='own'"):
        multitask_gridworld_v0.parallel_env(layout="no_conflict", observation="state")


def test_memory_guard_names_both_sizes_and_the_override(monkeypatch):
    from mpg_envs import TooLargeError
    from mpg_envs._validate import check_bytes, max_bytes

    with pytest.raises(
        TooLargeError,
        match=r"\(B, T\) = \(10\^9, 8\) would take ~59\.6 GiB.*limit of 2\.0 GiB.*MPG_MAX_BYTES",
    ):
        check_bytes("rollouts of shape (B, T) = (10^9, 8)", 8 * 8 * 10**9, advice="use fewer")
    assert check_bytes("x", 2 * 2**30, advice="") == 2 * 2**30
    monkeypatch.setenv("MPG_MAX_BYTES", "1e12")
    assert max_bytes() == 10**12
    assert check_bytes("x", 8 * 8 * 10**9, advice="") == 64 * 10**9
    monkeypatch.setenv("MPG_MAX_BYTES", "lots")
    with pytest.raises(ValueError, match="MPG_MAX_BYTES must be a positive number of bytes"):
        max_bytes()
    assert issubclass(ModelTooLargeError, TooLargeError)


def test_check_env_kwargs_lists_the_allowed_keys():
    import mpg_envs

    mpg_envs.check_env_kwargs("mpg/Congestion-v0", {"n_agents": 3, "max_cycles": 5})
    with pytest.raises(
        ValueError, match=r"unknown env keyword argument\(s\) \['foo'\].*allowed: \[.*'n_agents'"
    ):
        mpg_envs.check_env_kwargs("mpg/Congestion-v0", {"foo": 1})
    with pytest.raises(ValueError, match=r"unknown env id 'mpg/Nope-v0'"):
        mpg_envs.check_env_kwargs("mpg/Nope-v0", {})


def test_dcpg_config_refuses_zero_iterations_and_an_impossible_graph_p():
    from baselines.consensus import DCPGConfig

    with pytest.raises(ValueError, match=r"iters must be .*got 0"):
        DCPGConfig(iters=0).validate()
    with pytest.raises(ValueError, match=r"graph_p must be a number in \(0, 1\], got 0"):
        DCPGConfig(graph_p=0).validate()


def test_dcpg_resume_names_seeds_and_run_dcpg_names_none(tmp_path, capsys):
    from baselines.cli import main
    from baselines.consensus import run_dcpg

    assert main(["dcpg", "--resume", str(tmp_path), "--seeds", "3"]) == 2
    assert "got --seeds; only --iters extends it" in capsys.readouterr().err
    with pytest.raises(ValueError, match="cfg must be a DCPGConfig .*got None"):
        run_dcpg(None)


def test_sampler_names_out_of_range_starts_and_non_policies():
    from baselines.sampler import BatchSampler

    env = dist(n_agents=2)
    pol = exact.uniform_policy(env.model())
    with pytest.raises(ValueError, match=r"start must be .*got \[0, 99\] \(out of range: \[99\]\)"):
        BatchSampler(env.dynamics, 0).rollout(pol, 2, 5, start=[0, 99])
    with pytest.raises(TypeError, match="policy must be a baselines.policies.Policy .*got None"):
        BatchSampler(env.dynamics, 0).rollout_policy(None, 5, 5)


def test_neural_probs_refuse_nan_observations():
    from baselines.policies.neural import TorchSoftmaxPolicy

    d = coord(n_agents=2, observation="vector").dynamics
    F = d.observation_shape("vector")[0]
    pol = TorchSoftmaxPolicy.mlp(d, "vector", hidden="4", rng=np.random.default_rng(0))
    assert np.allclose(pol.probs(0, np.zeros((1, F), np.float32)).sum(), 1.0)
    with pytest.raises(ValueError, match="obs must be finite observations"):
        pol.probs(0, np.full((1, F), np.nan, np.float32))
