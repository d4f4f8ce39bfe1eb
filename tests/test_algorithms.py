"""The algorithms on policy objects give exactly the iterates of the table-based implementation
they replace (reference arrays in tests/data/tabular_iterates.npz, written by the previous
implementation: 3 games x 3 estimators x 6 configurations x 2 initialisations x 4 iterations)."""

from __future__ import annotations

import numpy as np
import pytest

from baselines.algorithms import ALGORITHMS, make_algorithm
from baselines.estimators import ExactEstimator
from baselines.sampler import ForcedActionEstimator, SampledEstimator
from mpg_envs import congestion_v0, coordination_v0, distancing_v0

REF = np.load(__file__.rsplit("/", 1)[0] + "/data/tabular_iterates.npz")
GAMES = {
    "coord3": lambda: coordination_v0.parallel_env(n_agents=3),
    "cong3": lambda: congestion_v0.parallel_env(n_agents=3, slip=0.2),
    "dist3": lambda: distancing_v0.parallel_env(n_agents=3),
}
CONFIGS = [
    ("ipg", {"eta": 0.5}),
    ("ipg", {"eta": 0.5, "log_barrier": 0.1}),
    ("inpg", {"eta": 0.05}),
    ("inpg", {"eta": 0.05, "log_barrier": 0.1}),
    ("npg_br", {"eta": 0.05, "inner_steps": 3}),
    ("ppg", {"eta": 0.01}),
]


def _estimator(name, env, model):
    if name == "exact":
        return ExactEstimator(model)
    rng = np.random.default_rng([7, 1])
    if name == "sampled":
        return SampledEstimator(env.dynamics, model.gamma, horizon=6, batch=7, rng=rng)
    return ForcedActionEstimator(env.dynamics, model.gamma, horizon=5, samples=3, rng=rng, value="visit_sum")


@pytest.mark.parametrize("game", sorted(GAMES))
@pytest.mark.parametrize("est_name", ["exact", "sampled", "forced"])
def test_same_iterates_as_the_table_based_implementation(game, est_name):
    env = GAMES[game]()
    model = env.model()
    for algo, kw in CONFIGS:
        for init in ("normal", "uniform"):
            alg = make_algorithm(algo, **kw)
            policy = alg.make_policy(env.dynamics, model.n_states, np.random.default_rng(7), init, "state")
            est = _estimator(est_name, env, model)
            for _ in range(4):
                alg.update(policy, est)
            params = policy.tables() if algo == "ppg" else policy.logits
            key = f"{game}|{est_name}|{algo}|{sorted(kw.items())}|{init}"
            for i, p in enumerate(params):
                np.testing.assert_array_equal(p, REF[f"{key}|{i}"], err_msg=key)


def test_options_are_the_algorithms_own():
    assert [f.name for f in ALGORITHMS["npg_br"].config_fields()] == ["eta", "log_barrier", "inner_steps"]
    with pytest.raises(
        ValueError, match=r"ipg has no option\(s\) \['inner_steps'\]; its options: \['eta', 'log_barrier'\]"
    ):
        make_algorithm("ipg", inner_steps=3)
    with pytest.raises(ValueError, match="unknown algorithm 'sgd'"):
        make_algorithm("sgd")
    for bad, match in [
        ({"eta": True}, "eta must be a finite number > 0, got True"),
        ({"eta": float("nan")}, "got nan"),
        ({"log_barrier": -1.0}, "log_barrier must be"),
    ]:
        with pytest.raises(ValueError, match=match):
            make_algorithm("inpg", **bad)
