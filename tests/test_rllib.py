"""RLlib (optional extra, its own environment): our envs through ``ParallelPettingZooEnv``, and the
exact metrics of the shared RLModule in RLlib's results and Tune's TensorBoard files.

Skipped unless ray is installed (``pip install -e '.[rllib]'`` in a separate environment: RLlib pins
gymnasium 1.2.2). CI runs this file in that environment (``.ci/run``).
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("ray.rllib")

import torch  # noqa: E402

from baselines.evaluation import ExactMetrics  # noqa: E402
from baselines.rllib_envs import (  # noqa: E402
    exact_metrics_callback,
    make_rllib_env,
    module_probs,
    register,
    shared_ppo_config,
)
from mpg_envs import exact  # noqa: E402

COORD = {"n_agents": 2, "observation": "vector"}
#: A couple of short PPO iterations (400 env steps each).
SHORT = {"train_batch_size": 400, "minibatch_size": 100, "num_epochs": 2}


def hand_tables(module, obs: np.ndarray) -> list[np.ndarray]:
    """Agent i's table: the module's softmax on agent i's observation in every state, written out."""
    tables = []
    with torch.no_grad():
        for i in range(obs.shape[1]):
            x = torch.tensor(np.array(obs[:, i]))
            if x.ndim == 1:  # index observations reach the network one-hot (FlattenObservations)
                x = torch.nn.functional.one_hot(x, module.observation_space.shape[0]).float()
            logits = module.forward_inference({"obs": x})["action_dist_inputs"]
            p = torch.softmax(logits.double(), dim=-1).numpy()
            tables.append(p / p.sum(axis=1, keepdims=True))
    return tables


def test_episodes_end_with_all_flags_on_the_grid_world():
    # agents finish separately; the last step of an episode sets __all__ (RLlib raised before)
    env = make_rllib_env("mpg/MultiTaskGridWorld-v0", layout="no_conflict", max_cycles=30)
    rng = np.random.default_rng(0)
    for ep in range(300):
        obs, _ = env.reset(seed=ep)
        while True:
            obs, rew, term, trunc, _ = env.step({a: int(rng.integers(4)) for a in obs})
            if term["__all__"] or trunc["__all__"]:
                break


@pytest.mark.slow
def test_ppo_trains_one_iteration_with_a_shared_policy():
    name = register("mpg/Coordination-v0", n_agents=2, observation="vector")
    config = shared_ppo_config(name, train_batch_size=400, minibatch_size=100, num_epochs=1)
    algo = config.build_algo()
    result = algo.train()
    algo.stop()
    assert result["env_runners"]["num_env_steps_sampled_lifetime"] >= 400


def test_exact_metrics_of_a_real_ppo_run_equal_those_of_the_hand_tabulated_module():
    name = register("mpg/Coordination-v0", **COORD)
    algo = shared_ppo_config(name, exact_every=1, **SHORT).build_algo()
    try:
        results = [algo.train() for _ in range(2)]
        module = algo.get_module("shared")
        tables = hand_tables(module, ExactMetrics("mpg/Coordination-v0", **COORD).observations)
        (cb,) = algo.callbacks
    finally:
        algo.stop()
    assert all(set(r["exact"]) >= {"nash_gap", "potential", "poa", "value_0", "welfare"} for r in results)
    logged = results[-1]["exact"]
    model = make_rllib_env("mpg/Coordination-v0", **COORD).par_env.unwrapped.model()
    gap = exact.nash_gap(model, tables)
    values = exact.evaluate(model, tables) @ model.mu
    assert logged["nash_gap"] == pytest.approx(float(gap.gap), rel=1e-6, abs=1e-9)
    assert logged["nash_gap_worst"] == pytest.approx(float(gap.worst), rel=1e-6, abs=1e-9)
    for i in range(2):
        assert logged[f"value_{i}"] == pytest.approx(float(values[i]), rel=1e-6)
    assert logged["welfare"] == pytest.approx(float(values.sum()), rel=1e-6)
    # the callback keeps its rows; the first row is the policy after iteration 1, not the last one
    assert [r["training_iteration"] for r in cb.rows] == [1.0, 2.0]
    assert cb.rows[1]["nash_gap"] == logged["nash_gap"]
    assert cb.rows[0]["nash_gap"] == results[0]["exact"]["nash_gap"] != logged["nash_gap"]


def test_exact_metrics_every_k_iterations():
    name = register("mpg/Coordination-v0", **COORD)
    algo = shared_ppo_config(name, exact_every=2, **SHORT).build_algo()
    try:
        results = [algo.train() for _ in range(2)]
    finally:
        algo.stop()
    assert "exact" not in results[0] and "nash_gap" in results[1]["exact"]


def test_index_observations_train_one_hot_and_decompose_on_the_grid_world():
    # observation="own" is a Discrete space: RLlib's default networks refused it ("No default encoder
    # config for obs space=Discrete(100)"); the default 10x10 layout's joint model is 572 GiB, its
    # exact metrics decompose over the 4 task models
    kw = {"layout": "no_conflict", "observation": "own", "max_cycles": 30}
    name = register("mpg/MultiTaskGridWorld-v0", **kw)
    algo = shared_ppo_config(name, exact_every=1, train_batch_size=400, minibatch_size=100, num_epochs=1)
    algo = algo.build_algo()
    try:
        logged = algo.train()["exact"]
        em = ExactMetrics("mpg/MultiTaskGridWorld-v0", **kw)
        tables = hand_tables(algo.get_module("shared"), em.observations)
    finally:
        algo.stop()
    assert em.decomposed and em.observations.shape == (100, 4)
    expect = em(tables)
    assert logged.keys() == expect.keys()
    for k in expect:
        assert logged[k] == pytest.approx(expect[k], rel=1e-6, abs=1e-9), k


def test_the_exact_metrics_reach_tensorboard_through_tune(tmp_path):
    from ray import tune
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    name = register("mpg/Coordination-v0", **COORD)
    config = shared_ppo_config(name, exact_every=1, **SHORT)
    run = tune.RunConfig(stop={"training_iteration": 2}, storage_path=str(tmp_path), verbose=0)
    (result,) = tune.Tuner("PPO", param_space=config, run_config=run).fit()
    assert result.error is None
    rows = result.metrics_dataframe
    (events,) = list(__import__("pathlib").Path(result.path).glob("events.out.tfevents.*"))
    acc = EventAccumulator(str(events))
    acc.Reload()
    for k in ("nash_gap", "potential", "poa", "welfare"):
        scalars = acc.Scalars(f"ray/tune/exact/{k}")
        assert [s.step for s in scalars] == [1, 2]
        # TensorBoard stores float32
        np.testing.assert_allclose([s.value for s in scalars], rows[f"exact/{k}"], rtol=1e-6)


def test_module_probs_equal_the_hand_tabulation_and_refuse_what_the_module_cannot_read():
    name = register("mpg/Coordination-v0", **COORD)
    algo = shared_ppo_config(name, **SHORT).build_algo()
    try:
        module = algo.get_module("shared")
        em = ExactMetrics("mpg/Coordination-v0", **COORD)
        probs = module_probs(module, em.observations)
        tables = hand_tables(module, em.observations)
        with pytest.raises(ValueError, match=r"reads observations of shape \(4,\)"):
            module_probs(module, np.zeros((3, 2, 5), np.float32))
        with pytest.raises(ValueError, match="do not fit"):
            module_probs(module, np.full((3, 2), 7))
        with pytest.raises(ValueError, match="shape"):
            module_probs(module, np.zeros(4, np.float32))
        cb = exact_metrics_callback("mpg/Coordination-v0", module_id="nope", **COORD)()
        with pytest.raises(ValueError, match="module_id 'nope' is not an RLModule"):
            cb.on_train_result(algorithm=algo, result={"training_iteration": 1})
    finally:
        algo.stop()
    assert probs.shape == (em.n_states, 2, 2)
    for i in range(2):
        np.testing.assert_allclose(probs[:, i], tables[i], rtol=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"every": 0}, "every"),
        ({"every": True}, "every"),
        ({"every": "2"}, "every"),
        ({"every": 2.5}, "every"),
        ({"module_id": ""}, "module_id"),
        ({"module_id": 3}, "module_id"),
        ({"bogus": 1}, "bogus"),
    ],
)
def test_callback_arguments_are_checked_before_training(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        exact_metrics_callback("mpg/Coordination-v0", **{**COORD, **kwargs})


def test_callback_refuses_envs_without_an_exact_model():
    with pytest.raises(ValueError, match="mpg/Nope-v0"):
        exact_metrics_callback("mpg/Nope-v0")


def test_exact_every_needs_an_env_registered_here():
    with pytest.raises(ValueError, match="registered by baselines.rllib_envs.register"):
        shared_ppo_config("never_registered", exact_every=1)
    name = register("mpg/Coordination-v0", **COORD)
    with pytest.raises(ValueError, match="every"):
        shared_ppo_config(name, exact_every=-1)


def test_the_readme_snippet_runs(tmp_path, monkeypatch, capsys):
    """The README's RLlib snippet (a ```py block: the main environment's README test has no ray)."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    (code,) = [b for b in re.findall(r"```py\n(.*?)```", readme, flags=re.S) if "exact_every" in b]
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})
    assert float(capsys.readouterr().out.split()[-1]) > 0  # the exact Nash gap of the first policy


def test_a_callback_for_another_game_is_refused_when_the_algorithm_is_built():
    # metrics of gamma = 0.5 for a policy trained with the env's default gamma would be silently wrong
    name = register("mpg/Coordination-v0", **COORD)
    other = exact_metrics_callback("mpg/Coordination-v0", gamma=0.5, **COORD)
    with pytest.raises(ValueError, match="the algorithm trains on 'mpg_Coordination-v0'"):
        shared_ppo_config(name, **SHORT).callbacks(other).build_algo()
    # env_config overrides the registered arguments, and the check sees it
    config = shared_ppo_config(name, exact_every=1, **SHORT).environment(name, env_config={"gamma": 0.5})
    with pytest.raises(ValueError, match="'gamma': 0.5"):
        config.build_algo()
