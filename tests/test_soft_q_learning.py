"""Sample-based Balancing-Q, ROMMEO and probabilistic fictitious play (baselines.soft_q_learning):
convergence to the exact operator's fixed point within a measured tolerance, reproducibility, and
bad input."""

from __future__ import annotations

import numpy as np
import pytest

from baselines import probabilistic as prob
from baselines.soft_q_learning import (
    sampled_balancing_q,
    sampled_pfp,
    sampled_rommeo,
    soft_q_learning,
)
from mpg_envs import TooLargeError, coordination_v0, multitask_gridworld_v0, tugofwar_v0

EXACT = {"balancing_q": prob.balancing_q, "rommeo": prob.rommeo, "pfp": prob.pfp}


@pytest.fixture(scope="module")
def coord_env():
    return coordination_v0.parallel_env(n_agents=2)


@pytest.fixture(scope="module")
def tug_env():
    return tugofwar_v0.parallel_env(n_positions=3)


# Tolerances: max |q - q*| after 800 batches of 32 episodes x 20 steps (omega 0.8, epsilon 0.1,
# exploring starts), measured over seeds 0..19 (mean / sd / max; sup |q*| for scale):
#   coordination N=2, Balancing-Q (2, 1):   0.173 / 0.040 / 0.292   (|q*| 34.9)
#   coordination N=2, ROMMEO 2:             0.231 / 0.066 / 0.360   (|q*| 38.6)
#   tug of war K=3, Balancing-Q (2, -2):    0.033 / 0.013 / 0.054   (|q*| 16.9)
#   tug of war K=3, PFP (2, -2):            0.063 / 0.033 / 0.173   (|q*| 20.4)
#   tug of war K=3, ROMMEO 2:               0.045 / 0.026 / 0.140   (|q*| 24.3)
# TOLS is twice the measured max (well beyond mean + 4 sd in every case).
TOLS = {
    ("coord", "balancing_q"): 0.6,
    ("coord", "rommeo"): 0.75,
    ("tug3", "balancing_q"): 0.11,
    ("tug3", "pfp"): 0.35,
    ("tug3", "rommeo"): 0.3,
}
CASES = [
    ("coord", "balancing_q", dict(beta=2.0, beta_opponent=1.0)),
    ("coord", "rommeo", dict(beta=2.0)),
    ("tug3", "balancing_q", dict(beta=2.0, beta_opponent=-2.0)),
    ("tug3", "pfp", dict(beta=2.0, beta_opponent=-2.0)),
    ("tug3", "rommeo", dict(beta=2.0)),
]


@pytest.mark.parametrize("game, algo, kw", CASES, ids=[f"{g}-{a}" for g, a, _ in CASES])
def test_sampled_converges_to_the_exact_fixed_point(game, algo, kw, coord_env, tug_env):
    env = coord_env if game == "coord" else tug_env
    exact_q = EXACT[algo](env.model(), tol=1e-10, **kw).q
    sol = soft_q_learning(env, algo, iterations=800, episodes=32, rng=3, target=exact_q, **kw)
    assert sol.errors[-1] <= TOLS[game, algo], sol.errors[-1]
    assert sol.errors[-1] < 0.05 * sol.errors[0]
    assert sol.visits.min() >= 400  # exploring starts: every joint (s, a) in most batches
    exact_pol = getattr(prob, f"{algo}_policies")(env.model(), exact_q, **kw)
    for p, r in zip(sol.policies, exact_pol):  # measured: <= 0.019 at seed 3
        np.testing.assert_allclose(p, r, atol=0.06)


def test_same_seed_same_result_and_early_stop(tug_env):
    kw = dict(beta=1.0, beta_opponent=-1.0, iterations=30, episodes=8, horizon=5)
    a, b = sampled_balancing_q(tug_env, rng=7, **kw), sampled_balancing_q(tug_env, rng=7, **kw)
    np.testing.assert_array_equal(a.q, b.q)
    c = sampled_balancing_q(tug_env, rng=8, **kw)
    assert not np.array_equal(a.q, c.q)
    exact_q = prob.balancing_q(tug_env.model(), 1.0, -1.0).q
    kw["iterations"] = 1000
    sol = sampled_balancing_q(tug_env, rng=1, target=exact_q, tol=0.5, **kw)
    assert sol.converged and sol.iterations < 1000 and sol.errors[-1] <= 0.5 < sol.errors[-2]
    assert sol.transitions == sol.iterations * 8 * 5 and len(sol.errors) == sol.iterations
    assert "converged=True" in repr(sol)


def test_agent_one_and_start_from_mu(tug_env):
    """Agent 1 learns its own (negated) reward's soft Q; from mu the middle position is learnt."""
    model = tug_env.model()
    exact_q = prob.pfp(model, 1.0, -1.0, agent=1).q
    sol = sampled_pfp(tug_env, 1.0, -1.0, agent=1, iterations=200, episodes=16, rng=0, target=exact_q)
    assert sol.errors[-1] < 0.1 * sol.errors[0]
    with pytest.warns(RuntimeWarning, match="never visited"):
        mu = sampled_rommeo(tug_env, 1.0, iterations=3, episodes=4, horizon=1, starts="mu", rng=0)
    assert mu.visits[1].max() == 3 and mu.visits[[0, 2]].sum() == 0  # horizon 1: only the start


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda e: soft_q_learning(e, "sac", beta=1.0), "algo must be one of"),
        (lambda e: soft_q_learning("mpg/Coordination-v0", "rommeo", beta=1.0), "mpg_envs environment"),
        (lambda e: sampled_rommeo(e, 1.0, beta_opponent=-1.0), "rommeo has one temperature"),
        (lambda e: soft_q_learning(e, "pfp", beta=1.0), "pfp needs beta_opponent"),
        (lambda e: sampled_balancing_q(e, 1.0, 1.0, mode="competitive"), "beta_opponent must be < 0"),
        (lambda e: sampled_pfp(e, 1.0, 0.0), "beta_opponent must be a finite non-zero"),
        (lambda e: sampled_rommeo(e, 1.0, prior=[0.2, 0.2]), "prior .*sums to 0.4"),
        (lambda e: sampled_rommeo(e, 1.0, iterations=0), "iterations must be a positive integer"),
        (lambda e: sampled_rommeo(e, 1.0, episodes=2.5), "episodes must be a positive integer"),
        (lambda e: sampled_rommeo(e, 1.0, horizon=-1), "horizon must be a positive integer"),
        (lambda e: sampled_rommeo(e, 1.0, omega=0.5), r"omega must be a number in \(0.5, 1\], got 0.5"),
        (lambda e: sampled_rommeo(e, 1.0, omega=float("nan")), "omega must be .*nan"),
        (lambda e: sampled_rommeo(e, 1.0, epsilon=1.5), r"epsilon must be a probability in \[0, 1\]"),
        (lambda e: sampled_rommeo(e, 1.0, starts="random"), "starts must be one of"),
        (lambda e: sampled_rommeo(e, 1.0, rng=-1), "rng must be"),
        (lambda e: sampled_rommeo(e, 1.0, q0=np.zeros((4, 3))), r"q0 must be .*got shape \(4, 3\)"),
        (lambda e: sampled_rommeo(e, 1.0, target=np.full((4, 4), np.nan)), "target .*nan"),
        (lambda e: sampled_rommeo(e, 1.0, tol=0.1), "tol=0.1 needs a target"),
        (lambda e: sampled_rommeo(e, 1.0, target=np.zeros((4, 4)), tol=0), "tol must be a finite number > 0"),
    ],
)
def test_bad_input_is_refused_naming_the_value(coord_env, call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call(coord_env)


def test_more_than_two_agents_and_huge_batches_are_refused(coord_env):
    with pytest.raises(ValueError, match="rommeo supports exactly 2 agents.*N=3"):
        sampled_rommeo(coordination_v0.parallel_env(n_agents=3), 1.0)
    with pytest.raises(TooLargeError, match="episodes, horizon"):
        sampled_rommeo(coord_env, 1.0, episodes=10**9, horizon=10**6)


def test_docstring_examples_run():
    import doctest

    import baselines.probabilistic
    import baselines.soft_q_learning

    for mod in (baselines.probabilistic, baselines.soft_q_learning):
        res = doctest.testmod(mod, optionflags=doctest.NORMALIZE_WHITESPACE)
        assert res.attempted > 0 and res.failed == 0, mod.__name__


def test_terminal_states_are_zero_and_the_rest_is_learnt():
    """A 2-agent game with terminal states (paper 004's reversed chain, deterministic): a q0 of 5
    everywhere is reset to 0 at the terminal states (their value at every fixed point), and the
    rest converges (measured: error <= 1.4e-5 after 300 batches, seeds 0..4)."""
    env = multitask_gridworld_v0.parallel_env(layout="chain_reversed")
    model = env.model()
    exact_q = prob.pfp(model, 2.0, -1.0).q
    q0 = np.full((model.n_states, 4), 5.0)
    sol = sampled_pfp(env, 2.0, -1.0, iterations=300, episodes=32, rng=0, target=exact_q, q0=q0)
    assert np.all(sol.q[model.terminal] == 0.0)
    assert sol.errors[-1] <= 1e-3


def test_never_visited_entries_warn_and_overflow_is_refused(tug_env):
    with pytest.warns(RuntimeWarning, match="never visited in 2 batches.*still q0's"):
        sampled_rommeo(tug_env, 1.0, iterations=2, episodes=2, horizon=1, starts="mu", rng=0)
    huge = tugofwar_v0.parallel_env(n_positions=3, heads_bonus=1e308)
    with pytest.raises(ValueError, match="overflowed in batch 1.*rescale the rewards"):
        sampled_rommeo(huge, 1.0, iterations=5, episodes=4, rng=0)


def test_error_history_of_absurd_iterations_is_refused_before_running(coord_env):
    with pytest.raises(TooLargeError, match="error history of 1,000,000,000,000,000,000 batches"):
        sampled_rommeo(coord_env, 1.0, iterations=10**18, target=np.zeros((4, 4)))
