"""Multi-task GridWorld: layouts, closed forms of paper 004 §2.2 / App. A, per-agent termination,
the Gymnasium single-task env, multi-task objective and gradient, bad input."""

from __future__ import annotations

import gymnasium
import numpy as np
import pettingzoo
import pytest
from gymnasium.utils.env_checker import check_env
from helpers import assert_simulator_matches_model, mc_returns

import mpg_envs  # noqa: F401
from mpg_envs import exact, multitask_gridworld_v0
from mpg_envs.gridworld import LAYOUTS, GridSpec, chain_tasks, grid_task, layout_tasks, layout_text
from mpg_envs.model import ModelTooLargeError


def _chain_value(variant: str, x: float, gamma: float, p: float = 0.75) -> float:
    """sum_i V_i(S_3) of the chain layout when pi(L | S_3) = x (and L in S_2, S_4), exact model."""
    env = multitask_gridworld_v0.parallel_env(layout=f"chain_{variant}", chain_p=p, gamma=gamma)
    pol = np.tile([1.0, 0.0], (5, 1))
    pol[2] = [x, 1 - x]
    return exact.multitask_value(env.task_models(), pol)


# ------------------------------------------------------------------------------- closed forms
@pytest.mark.parametrize("gamma", [0.5, 0.9, 0.99])
def test_chain_reversed_closed_forms(gamma):
    """Paper 004 §2.2 / App. A: uniform in S_3 is optimal, 2g/(2-g^2); deterministic gives g."""
    assert _chain_value("reversed", 0.5, gamma) == pytest.approx(2 * gamma / (2 - gamma**2), rel=1e-12)
    assert _chain_value("reversed", 1.0, gamma) == pytest.approx(gamma, rel=1e-12)
    assert _chain_value("reversed", 0.0, gamma) == pytest.approx(gamma, rel=1e-12)
    xs = np.linspace(0, 1, 101)
    vals = [_chain_value("reversed", x, gamma) for x in xs]
    assert xs[int(np.argmax(vals))] == pytest.approx(0.5)
    # the per-task values of App. A: V_1 = x g / (1 - (1 - x) g^2)
    env = multitask_gridworld_v0.parallel_env(layout="chain_reversed", gamma=gamma)
    pol = np.tile([1.0, 0.0], (5, 1))
    pol[2] = [0.3, 0.7]
    V1 = exact.evaluate(env.task_models()[0], [pol])[0][2]
    assert V1 == pytest.approx(0.3 * gamma / (1 - 0.7 * gamma**2), rel=1e-12)


def _paper_deterministic(g, p):
    return g * (-2 * g**2 * p + g**2 + 2 * p - 1) / (g**4 * p**2 - g**4 * p + g**2 - 1)


@pytest.mark.parametrize("gamma, p", [(0.9, 0.75), (np.sqrt(0.5), 0.75), (np.sqrt(0.5), 0.9), (0.95, 0.6)])
def test_chain_slip_stationary_points(gamma, p):
    """Second example: always-L, always-R and uniform in S_3 are stationary; the first two are the
    global maximum over pi(. | S_3). The paper's general formulas match the exact model."""
    det = _paper_deterministic(gamma, p)
    assert _chain_value("slip", 1.0, gamma, p) == pytest.approx(det, rel=1e-12)
    assert _chain_value("slip", 0.0, gamma, p) == pytest.approx(det, rel=1e-12)
    assert _chain_value("slip", 0.5, gamma, p) == pytest.approx(
        gamma * (2 - 4 * p) / (2 - gamma**2), rel=1e-12
    )
    xs = np.linspace(0, 1, 201)
    vals = np.array([_chain_value("slip", x, gamma, p) for x in xs])
    assert vals.max() == pytest.approx(det, rel=1e-12) and vals.argmax() in (0, 200)
    assert vals.min() == pytest.approx(vals[100])  # the uniform point is the worst, not a maximum
    # exact softmax gradient: zero at the uniform point, vanishing towards the deterministic ones
    env = multitask_gridworld_v0.parallel_env(layout="chain_slip", chain_p=p, gamma=gamma)
    models = env.task_models()
    for x, tol in ((0.5, 1e-12), (1 - 1e-9, 1e-8), (1e-9, 1e-8)):
        pol = np.tile([0.5, 0.5], (5, 1))
        pol[2] = [x, 1 - x]
        assert np.abs(exact.multitask_gradient(models, pol)).max() <= tol


def test_paper_specialisation_to_gamma_sqrt_half_is_wrong():
    """App. A substitutes gamma = sqrt(0.5) into its formulas and gets the wrong numbers."""
    g, p = np.sqrt(0.5), 0.75
    det, uni = _chain_value("slip", 1.0, g, p), _chain_value("slip", 0.5, g, p)
    paper_det, paper_uni = (2 * p - 1) / (8 * np.sqrt(2) * (p - 2) * (p + 1)), (4 - 8 * p) / 3
    ours_det, ours_uni = np.sqrt(2) * (2 * p - 1) / ((p - 2) * (p + 1)), np.sqrt(2) * (2 - 4 * p) / 3
    assert det == pytest.approx(ours_det, rel=1e-12) and uni == pytest.approx(ours_uni, rel=1e-12)
    assert abs(det - paper_det) > 0.25 and abs(uni - paper_uni) > 0.15
    assert det > uni and paper_det > paper_uni  # the paper's conclusion survives


# ------------------------------------------------------------------------------- layouts
def _cells(task, kind):
    return set(getattr(task, kind).tolist())


def test_named_layout_conflict_structure():
    nc, rc, uc = (layout_tasks(n) for n in ("no_conflict", "resolvable_conflict", "unresolvable_conflict"))
    for tasks in (nc, rc, uc):
        assert len(tasks) == 4 and all(t.shape == (10, 10) and t.start[0] == 1 for t in tasks)

    def conflicts(tasks):
        return {
            (i, j)
            for i, a in enumerate(tasks)
            for j, b in enumerate(tasks)
            if _cells(a, "obstacles") & _cells(b, "goals")
        }

    assert conflicts(nc) == set()
    assert conflicts(rc) == {(1, 2)}  # an obstacle of task 2 is the goal of task 3
    assert conflicts(uc) == {(1, 2), (2, 1)}  # goals of tasks 2 and 3 are each other's obstacles
    left, right = layout_tasks("start_top_left"), layout_tasks("start_top_right")
    assert len(left) == len(right) == 6
    assert all(t.start[0] == 1 for t in left) and all(t.start[9] == 1 for t in right)
    assert [t.reward.tolist() for t in left] == [t.reward.tolist() for t in right]
    for name in LAYOUTS:
        if not name.startswith("chain"):
            again = [grid_task(txt) for txt in layout_text(name)]
            assert all(
                np.array_equal(a.P, b.P) and np.array_equal(a.reward, b.reward)
                for a, b in zip(again, layout_tasks(name))
            )


def test_grid_text_format_and_moves():
    t = grid_task("S.W/..G/#..")
    assert t.shape == (3, 3) and t.start[0] == 1.0
    up, down, left, right = range(4)
    assert t.P[0, up, 0] == 1 and t.P[0, left, 0] == 1  # off-grid: stay
    assert t.P[1, right, 1] == 1  # wall: stay
    assert t.P[1, down, 4] == 1 and t.P[4, right, 5] == 1
    assert t.reward[5] == 1 and t.reward[6] == -1 and t.terminal[[5, 6]].all()
    assert t.P[5, :, 5].tolist() == [1, 1, 1, 1]  # absorbing
    s = grid_task("S..#..G", slip=0.2)
    # right from cell 1: 0.8 + 0.2/4 right, 0.2/4 left, 2 * 0.2/4 up/down (off-grid: stay)
    assert s.P[1, 3].tolist()[:3] == pytest.approx([0.05, 0.10, 0.85])
    nxt, probs = s.compiled()
    for a in range(4):  # the compiled table reproduces P exactly
        emp = np.zeros(7)
        np.add.at(emp, nxt[1, a], probs)
        np.testing.assert_allclose(emp, s.P[1, a], atol=1e-12)


@pytest.mark.parametrize(
    "layout, match",
    [
        ("fig2", "unknown layout"),
        (["S.G", "S.X"], r"unknown characters \['X'\]"),
        (["S.G/..", "S.G/..."], "different lengths"),
        (["S.G", "S.G/..."], "one grid shape"),
        ([], "non-empty sequence"),
        (["G"], "no free cell"),
    ],
)
def test_bad_layouts(layout, match):
    with pytest.raises(ValueError, match=match):
        multitask_gridworld_v0.parallel_env(layout=layout)


def test_bad_grid_specs_and_parameters():
    with pytest.raises(ValueError, match=r"cell \(1, 1\) is both a goal and a obstacle"):
        GridSpec((3, 3), goals=((1, 1),), obstacles=((1, 1),))
    with pytest.raises(ValueError, match="outside the 3x3 grid"):
        GridSpec((3, 3), goals=((3, 0),))
    with pytest.raises(ValueError, match="both a goal and a start"):
        GridSpec((3, 3), goals=((0, 0),), starts=((0, 0),))
    with pytest.raises(ValueError, match="slip must be a probability"):
        multitask_gridworld_v0.parallel_env(slip=1.5)
    with pytest.raises(ValueError, match=r"gamma must be in \(0, 1\)"):
        multitask_gridworld_v0.parallel_env(gamma=1.0)
    with pytest.raises(ValueError, match="chain variant"):
        chain_tasks("bent")
    with pytest.raises(ValueError, match="p must be a probability"):
        multitask_gridworld_v0.parallel_env(layout="chain_slip", chain_p=2.0)
    with pytest.raises(ValueError, match=r"task must be an index in \[0, 4\)"):
        gymnasium.make("mpg/GridWorldTask-v0", layout="no_conflict", task=4)
    env = multitask_gridworld_v0.parallel_env(render_mode="rgb_array")
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"policy must have shape \(S, A\) = \(100, 4\)"):
        env.unwrapped.render_rgb(np.ones((100, 2)) / 2)


def test_joint_model_of_large_layout_refused_task_models_given():
    env = multitask_gridworld_v0.parallel_env(layout="no_conflict")
    with pytest.raises(ModelTooLargeError, match="S=100,000,000 states"):
        env.unwrapped.model()
    models = env.unwrapped.task_models()
    assert len(models) == 4 and all(m.n_agents == 1 and m.n_states == 100 for m in models)


# ------------------------------------------------------------------------------- envs
def test_registered_pettingzoo_and_gymnasium():
    env = pettingzoo.make("parallel", "mpg/MultiTaskGridWorld-v0", layout="unresolvable_conflict")
    obs, _ = env.reset(seed=0)
    assert len(obs) == 4 and all(o == 0 for o in obs.values())
    for layout, n in (("unresolvable_conflict", 4), ("chain_slip", 2)):
        for k in range(n):
            task = gymnasium.make("mpg/GridWorldTask-v0", layout=layout, task=k)
            check_env(task.unwrapped, skip_render_check=False)


def test_per_agent_termination():
    env = multitask_gridworld_v0.parallel_env(layout="chain_reversed")
    env.reset(seed=0)
    _, rew, term, *_ = env.step({"agent_0": 0, "agent_1": 0})  # S3 -> S2 in both tasks
    assert rew == {"agent_0": 0.0, "agent_1": 0.0} and not any(term.values())
    obs, rew, term, trunc, info = env.step({"agent_0": 0, "agent_1": 0})  # task 1 reaches S1
    assert rew == {"agent_0": 1.0, "agent_1": 0.0}
    assert term == {"agent_0": True, "agent_1": False} and env.agents == ["agent_1"]
    assert info["agent_0"]["cell"] == 0 and info["agent_1"]["cell"] == 2
    obs, rew, term, *_ = env.step({"agent_1": 1})  # task 2: S3 -> S4
    assert set(obs) == {"agent_1"} and rew == {"agent_1": 0.0}
    with pytest.raises(ValueError, match=r"unknown \['agent_7'\]"):
        env.step({"agent_7": 0, "agent_1": 0})
    with pytest.raises(ValueError, match=r"missing \['agent_1'\]"):
        env.step({"agent_0": 0})
    # a finished agent's action is ignored (TorchRL's PettingZooWrapper(use_mask=True) sends one)
    _, rew, term, *_ = env.step({"agent_0": 1, "agent_1": 0})  # reversed in S4: L goes to S5, task 2's goal
    assert rew == {"agent_1": 1.0} and term == {"agent_1": True} and env.agents == []


def test_joint_chain_model_matches_simulator_and_is_an_mpg():
    env = multitask_gridworld_v0.parallel_env(layout="chain_slip", chain_p=0.7, gamma=0.9)
    m = env.model()
    rng = np.random.default_rng(0)
    assert_simulator_matches_model(env.dynamics, m, n=3000)
    own = env.observation_index("own")
    c = exact.cycle_residual(m, np.random.default_rng(0), obs_map=own)
    p = exact.potential_residual(m, np.random.default_rng(0), obs_map=own)
    assert c.max_residual <= 1e-12 and p.max_residual <= 1e-12  # own-cell policies: Phi = sum_i V_i
    # global-state policies couple the tasks through what the agents observe: no potential
    c = exact.cycle_residual(m, np.random.default_rng(0))
    p = exact.potential_residual(m, np.random.default_rng(0))
    assert c.max_residual == pytest.approx(1.5854563938855222, rel=1e-6) and c.relative > 1
    assert p.max_residual == pytest.approx(0.9171471195706892, rel=1e-6)
    # joint value of a product of one policy per task = sum of task values
    pol = exact.random_policy(m, rng, obs_map=own)
    V = exact.evaluate(m, pol) @ m.mu
    tm = env.task_models()
    per_task = [exact.evaluate(tm[i], [_own(pol[i], own[i])])[0] @ tm[i].mu for i in range(2)]
    assert V == pytest.approx(per_task, rel=1e-12)


def _own(joint_pol: np.ndarray, own_row: np.ndarray) -> np.ndarray:
    """Collapse an own-cell policy on joint states (S^N, A) to a cell policy (S, A)."""
    out = np.zeros((int(own_row.max()) + 1, joint_pol.shape[1]))
    out[own_row] = joint_pol
    return out


def test_multitask_value_matches_monte_carlo_and_gradient_matches_fd():
    tasks_text = ["S..#/.W.G/....", "S..G/.W.#/...."]
    env = multitask_gridworld_v0.parallel_env(layout=tasks_text, slip=0.2, gamma=0.9)
    models = env.task_models()
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(12, 4))
    pol = exact.softmax_policy([logits])[0]
    total = 0.0
    for i in range(2):
        G = mc_returns(env.dynamics.task_dynamics(i), [pol], 0.9, n_episodes=20_000, horizon=250, rng=rng)
        total += G.mean()
        V = exact.evaluate(models[i], [pol])[0] @ models[i].mu
        assert abs(G.mean() - V) <= 4.5 * G.std() / np.sqrt(len(G))
    assert exact.multitask_value(models, pol) == pytest.approx(total, abs=0.02)
    grad = exact.multitask_gradient(models, pol)
    h, fd = 1e-6, np.zeros_like(logits)
    for idx in np.ndindex(logits.shape):
        for sgn in (1, -1):
            th = logits.copy()
            th[idx] += sgn * h
            fd[idx] += sgn * exact.multitask_value(models, exact.softmax_policy([th])[0]) / (2 * h)
    np.testing.assert_allclose(grad, fd, atol=1e-7)


def test_gym_task_env_matches_task_model():
    task = gymnasium.make("mpg/GridWorldTask-v0", layout=["S..#/.W.G/...."], slip=0.3).unwrapped
    m = task.model()
    task.reset(seed=2)
    for s in (0, 1, 4, 8):
        for a in range(4):
            counts = np.zeros(m.n_states)
            for _ in range(400):
                task.reset(options={"state": s})
                cell, r, *_ = task.step(a)
                counts[cell] += 1
                assert r == pytest.approx({7: 1.0, 3: -1.0}.get(cell, 0.0))
            p = m.P[s * 4 + a].toarray().ravel()
            assert np.all(np.abs(counts / 400 - p) <= 5 * np.sqrt(p * (1 - p) / 400) + 1e-12)
    with pytest.raises(ValueError, match="action must be in"):
        task.step(7)
    det = gymnasium.make("mpg/GridWorldTask-v0", layout=["S..#/.W.G/...."]).unwrapped  # no slip
    det.reset(options={"state": 2})
    assert det.step(3)[1:3] == (-1.0, True)  # onto the obstacle
    with pytest.raises(RuntimeError, match="terminated"):
        det.step(0)


def test_render_policy_path():
    env = multitask_gridworld_v0.parallel_env(layout="no_conflict", render_mode="rgb_array")
    env.reset(seed=0)
    plain = env.render()
    right = np.zeros((100, 4))
    right[:, 3] = 1.0
    with_path = env.unwrapped.render_rgb(right)
    green = np.all(with_path == (150, 230, 150), axis=2).sum()
    assert green > 0 and np.all(plain == (150, 230, 150), axis=2).sum() == 0
    txt = multitask_gridworld_v0.parallel_env(layout="chain_reversed", render_mode="ansi")
    txt.reset(seed=0)
    out = txt.render()
    assert "task 1\nG.A.#" in out and "task 2\n#.A.G" in out
