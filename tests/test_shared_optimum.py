"""The brackets of paper 004's multi-task optimum (``shared_optimum``) against brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from baselines.consensus import TaskSet
from baselines.consensus.objective import shared_optimum, softmax_logits
from mpg_envs.gridworld.env import MultiTaskGridWorldEnv

# two tasks on a 2x3 grid: each one's goal is the other's obstacle in one corner
TINY = ["S.G/#..", "S.#/G.."]


def _env(layout, gamma=0.9, slip=0.0):
    env = MultiTaskGridWorldEnv(layout=layout, gamma=gamma, slip=slip)
    return env, TaskSet.from_env(env)


@pytest.mark.parametrize(
    "layout",
    [
        TINY,
        ["S../..G", "S.G/..."],
        ["S#G/...", "S../G#."],
        ["S.G./....", "S..G/...."],  # task 2's goal lies beyond task 1's: the route passes through it
        ["S..G/.#..", "..G./S#..", "G.../S..."][:1] + ["S.G./.#..", "S.../.#.G"],
    ],
)
def test_best_deterministic_policy_is_the_brute_force_optimum(layout):
    env, ts = _env(layout)
    S, A = ts.n_states, ts.n_actions
    pols = np.stack([np.eye(A)[list(c)] for c in itertools.product(range(A), repeat=S)])  # A^S policies
    brute = ts.objective(pols).max()
    opt = shared_optimum(env.tasks, ts.gamma)
    assert opt.complete
    assert opt.best == pytest.approx(brute, abs=1e-12)
    assert ts.objective(opt.policy)[0] == pytest.approx(opt.best, abs=1e-12)
    assert opt.bound >= brute - 1e-12


@pytest.mark.parametrize("layout", ["no_conflict", "unresolvable_conflict", TINY])
def test_the_bound_is_above_every_shared_policy(layout):
    env, ts = _env(layout, gamma=0.95)
    opt = shared_optimum(env.tasks, ts.gamma)
    rng = np.random.default_rng(0)
    logits = rng.normal(scale=3.0, size=(200, ts.n_states, ts.n_actions))
    assert ts.objective(softmax_logits(logits)).max() <= opt.bound + 1e-12
    if layout == "no_conflict":  # a self-avoiding route collects every goal: bound attained
        assert opt.complete and opt.best == pytest.approx(opt.bound, abs=1e-12)


def test_one_task_is_its_optimal_value():
    env, ts = _env(["S...#/..W../....G"], gamma=0.9)
    opt = shared_optimum(env.tasks, ts.gamma)
    # value iteration by hand on the task's model
    v = np.zeros(ts.n_states)
    for _ in range(2000):
        v = (ts.R[0] + ts.gamma * ts.P[0] @ v).max(axis=1)
    assert opt.bound == pytest.approx(ts.rho[0] @ v, abs=1e-10)
    assert opt.best == pytest.approx(opt.bound, abs=1e-10)


def test_random_moves_give_only_the_bound_and_bad_input_is_refused():
    env, ts = _env(TINY, slip=0.2)
    opt = shared_optimum(env.tasks, ts.gamma)
    assert opt.best is None and opt.policy is None
    logits = np.random.default_rng(1).normal(scale=3.0, size=(100, ts.n_states, ts.n_actions))
    assert ts.objective(softmax_logits(logits)).max() <= opt.bound + 1e-12
    env2, _ = _env(["S.G/...", ".S./G.."])
    with pytest.raises(ValueError, match="one start distribution"):
        shared_optimum(env2.tasks, 0.9)
    with pytest.raises(ValueError, match="move differently"):
        shared_optimum(MultiTaskGridWorldEnv(layout="chain_reversed").tasks, 0.9)


@pytest.mark.parametrize("layout", ["resolvable_conflict", "start_top_left", "start_top_right"])
def test_named_layouts_routes_are_exact_and_complete(layout):
    env, ts = _env(layout, gamma=0.95)
    opt = shared_optimum(env.tasks, ts.gamma)
    assert opt.complete
    assert ts.objective(opt.policy)[0] == pytest.approx(opt.best, abs=1e-12)
    if layout.startswith("start"):  # one route collects all six goals: the bound is attained
        N = len(env.tasks)
        success, _ = ts.outcomes(np.repeat(opt.policy[None], N, axis=0), np.arange(N), 100)
        assert success.min() == 1.0 and opt.best == pytest.approx(opt.bound, abs=1e-12)
    if layout != "start_top_right":
        return
    # an incumbent it cannot beat: nothing found, and the search says so
    none = shared_optimum(env.tasks, ts.gamma, incumbent=opt.best + 1e-6)
    assert none.best is None and none.policy is None and none.complete
