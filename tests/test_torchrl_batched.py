"""The batched TorchRL env (``make_torchrl_env(num_envs=n)``) and the TorchRL exact-metrics helper.

Pinning: with ``num_envs=1`` and the same seed, the batched env and the single env's wrapper make
the same random draws (``ParallelVectorEnv`` draws the transition noise, then the initial states of
the copies that end, from one generator -- the single env's order, and TorchRL's reset of a copy
that ended uses the start the vector env drew), so driven by the same actions they must give equal
tensors at every key, step for step, across episode ends. With n copies, the batched env is pinned
against a ``ParallelVectorEnv`` driven with the same seed and actions.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

pytest.importorskip("torchrl")
torch = pytest.importorskip("torch")

import pettingzoo  # noqa: E402

import mpg_envs  # noqa: E402
from baselines.evaluation import ExactMetrics  # noqa: E402
from baselines.torchrl_envs import TorchRLExactMetrics, exact_metrics, make_torchrl_env  # noqa: E402
from mpg_envs import exact  # noqa: E402
from mpg_envs.vector import make_parallel_vec  # noqa: E402

warnings.filterwarnings("ignore", message=".*PettingZoo in TorchRL is tested.*")

SMALL = {  # small instances of every env with an exact model
    "mpg/Congestion-v0": {"n_agents": 3},
    "mpg/Coordination-v0": {"n_agents": 2},
    "mpg/Distancing-v0": {"n_agents": 4},
    "mpg/MultiTaskGridWorld-v0": {"layout": "chain_slip", "max_cycles": 7},
    "mpg/TugOfWar-v0": {"n_positions": 3},
}
G = "agent"  # the wrapper's group of agents agent_0 ... agent_{N-1}


def _modes(env_id):
    return list(pettingzoo.make("parallel", env_id, **SMALL[env_id]).unwrapped.dynamics.observation_modes)


CASES = [(e, m) for e in sorted(SMALL) for m in _modes(e)]


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


def test_every_registered_env_has_a_case():
    assert set(SMALL) == set(mpg_envs.ENV_IDS)


def _collector_class():
    """``Collector`` (torchrl >= 0.12), ``SyncDataCollector`` before (BenchMARL's torchrl 0.11)."""
    try:
        from torchrl.collectors import Collector
    except ImportError:
        from torchrl.collectors import SyncDataCollector as Collector
    return Collector


def _random_actions(rng, sizes, n):
    return torch.as_tensor(np.stack([rng.integers(0, k, n) for k in sizes], axis=1))


@pytest.mark.parametrize(("env_id", "observation"), CASES)
def test_check_env_specs(env_id, observation):
    from torchrl.envs.utils import check_env_specs

    kw = {**SMALL[env_id], "observation": observation}
    env = make_torchrl_env(env_id, seed=0, num_envs=3, return_state=True, **kw)
    check_env_specs(env, seed=0)
    single = make_torchrl_env(env_id, return_state=True, **kw)
    # a drop-in for n wrappers: the same keys, spec types, dtypes and shapes with n in front
    for name in ("full_observation_spec", "full_action_spec", "full_reward_spec", "full_done_spec"):
        batched, one = getattr(env, name), getattr(single, name)
        assert set(batched.keys(True, True)) == set(one.keys(True, True)), name
        for key in one.keys(True, True):
            b, o = batched[key], one[key]
            assert type(b) is type(o) and b.dtype == o.dtype, (name, key)
            assert b.shape == torch.Size([3, *o.shape]), (name, key)
    assert env.group_map == single.group_map == {G: [f"agent_{i}" for i in range(len(single.group_map[G]))]}


@pytest.mark.parametrize("seed", range(12))
def test_check_env_specs_chain_slip_seeds(seed):
    """Agents of chain_slip finish at different steps; finished agents keep a valid one-hot."""
    from torchrl.envs.utils import check_env_specs

    for observation in ("state", "own"):
        env = make_torchrl_env(
            "mpg/MultiTaskGridWorld-v0", seed=seed, num_envs=4, layout="chain_slip", observation=observation
        )
        check_env_specs(env, seed=seed)


def test_check_env_specs_10x10_own():
    from torchrl.envs.utils import check_env_specs

    env = make_torchrl_env("mpg/MultiTaskGridWorld-v0", seed=0, num_envs=8, observation="own", max_cycles=20)
    check_env_specs(env, seed=0)
    assert env.observation_spec[G, "observation"].shape == torch.Size([8, 4, 100])
    td = env.rollout(45, break_when_any_done=False)
    assert td["next", "done"].any()


def _pin(env_id, kw, seed, steps):
    """Drive the wrapper and the batched env (n=1) with the same actions; every key equal."""
    single = make_torchrl_env(env_id, seed=seed, return_state=True, **kw)
    batched = make_torchrl_env(env_id, seed=seed, num_envs=1, return_state=True, **kw)
    sizes = batched.venv.dynamics.action_sizes
    rng = np.random.default_rng(seed)
    ts, tb = single.reset(), batched.reset()
    ends, finished = 0, 0
    for t in range(steps):
        a = _random_actions(rng, sizes, 1)
        ts.set((G, "action"), a[0])
        tb.set((G, "action"), a)
        out_s, ts = single.step_and_maybe_reset(ts)
        out_b, tb = batched.step_and_maybe_reset(tb)
        keys = set(out_s.keys(True, True))
        assert keys == set(out_b.keys(True, True))
        for key in keys:
            assert torch.equal(out_s[key], out_b[0][key]), (t, key, out_s[key], out_b[0][key])
        ends += int(out_s["next", "done"].item())
        if (G, "mask") in keys:
            finished += int((~out_s["next", G, "mask"]).any() and not out_s["next", "done"].item())
    return ends, finished


@pytest.mark.parametrize(("env_id", "observation"), CASES)
def test_step_for_step_against_the_wrapper(env_id, observation):
    kw = {**SMALL[env_id], "observation": observation, "max_cycles": 7}
    ends, finished = _pin(env_id, kw, seed=1, steps=40)
    assert ends >= 5  # across episode ends (time limits, and terminals in the grid world)
    if env_id == "mpg/MultiTaskGridWorld-v0":
        assert finished > 0  # agents that finished while the other went on: the mask path


def test_step_for_step_against_the_wrapper_10x10_own():
    ends, finished = _pin(
        "mpg/MultiTaskGridWorld-v0", {"observation": "own", "slip": 0.2, "max_cycles": 15}, seed=3, steps=50
    )
    assert ends >= 3


@pytest.mark.parametrize("seed", range(4))
def test_chain_slip_seeds_against_the_wrapper(seed):
    ends, finished = _pin(
        "mpg/MultiTaskGridWorld-v0", {"layout": "chain_slip", "observation": "state"}, seed, 40
    )
    assert ends > 0 and finished > 0


def test_n_copies_follow_the_vector_env():
    """n copies: the batched env's states, rewards and flags are the ParallelVectorEnv's driven
    with the same seed and actions (its starts drawn by one reset per TorchRL reset)."""
    n, kw = 5, {"layout": "chain_slip", "observation": "own", "max_cycles": 6}
    env = make_torchrl_env("mpg/MultiTaskGridWorld-v0", seed=7, num_envs=n, **kw)
    venv = make_parallel_vec("mpg/MultiTaskGridWorld-v0", n, **kw)
    venv.reset(seed=7)  # set_seed's reset
    venv.reset()  # the rollout's first reset draws every copy's start again
    rng = np.random.default_rng(0)
    sizes = venv.dynamics.action_sizes
    td = env.reset()
    for _ in range(30):
        a = _random_actions(rng, sizes, n)
        td.set((G, "action"), a)
        out, td = env.step_and_maybe_reset(td)
        live = venv.alive
        obs, rew, term, trunc, infos = venv.step(a.numpy())
        nxt = out["next"]
        np.testing.assert_array_equal(nxt[G, "reward"][..., 0].numpy(), rew.astype(np.float32))
        np.testing.assert_array_equal(nxt[G, "terminated"][..., 0].numpy(), term | ~live)
        np.testing.assert_array_equal(nxt[G, "truncated"][..., 0].numpy(), trunc | ~live)
        np.testing.assert_array_equal(nxt[G, "mask"].numpy(), live & ~term & ~trunc)
        reached = infos["final_info"]["state"] if "final_info" in infos else infos["state"]
        want = np.where(live, reached[:, None], 0).astype(np.float32)
        np.testing.assert_array_equal(nxt[G, "info", "state"].numpy(), want)
        np.testing.assert_array_equal(nxt["done"][:, 0].numpy(), infos.get("_final_obs", np.zeros(n, bool)))
        # the copies that ended restart from the starts the vector env drew
        alive = infos["alive"]
        np.testing.assert_array_equal(td[G, "mask"].numpy(), alive)
        got = td[G, "info", "state"].numpy()[alive]
        np.testing.assert_array_equal(got, np.broadcast_to(infos["state"][:, None], alive.shape)[alive])


def test_partial_resets_in_a_rollout():
    """A copy that ends restarts (all agents live, a start state of mu) while the others go on."""
    n, kw = 6, {"layout": "chain_slip", "observation": "own", "max_cycles": 5}
    env = make_torchrl_env("mpg/MultiTaskGridWorld-v0", seed=0, num_envs=n, **kw)
    model = env.venv.model()
    td = env.rollout(40, break_when_any_done=False)
    assert td.batch_size == torch.Size([n, 40])
    done = td["next", "done"][..., 0]
    assert done.any() and not done.all(dim=0).all()  # copies end at different steps
    assert (done.sum(dim=1) > 0).all()
    mixed = 0
    for t in range(39):
        for k in range(n):
            here, after = td[k, t], td[k, t + 1]
            if done[k, t]:
                assert after[G, "mask"].all()
                start = int(after[G, "info", "state"][0])
                assert model.mu[start] > 0
            else:  # the copy goes on from where the step left it
                for key in ((G, "observation"), (G, "mask"), (G, "info", "state")):
                    assert torch.equal(after[key], here["next"][key])
        mixed += int(done[:, t].any() and not done[:, t].all())
    assert mixed > 0  # steps where some copies restarted and others went on
    # every transition has positive probability under the model (states read from the infos)
    S = model.n_states
    for k in range(n):
        for t in range(40):
            mask = td[k, t][G, "mask"]
            if not mask.all():
                continue  # an agent had finished: its info row is zero
            s = int(td[k, t][G, "info", "state"][0])
            nxt = td[k, t]["next"]
            if not nxt[G, "info", "state"].ne(0).all():
                continue
            s2 = int(nxt[G, "info", "state"][0])
            a = td[k, t][G, "action"].numpy()
            row = s * int(np.prod(model.action_sizes)) + int(np.ravel_multi_index(a, model.action_sizes))
            assert model.P[row, s2] > 0 and s2 < S


def test_reset_of_chosen_copies_and_step_after_end():
    env = make_torchrl_env("mpg/Coordination-v0", seed=0, num_envs=3, n_agents=2, max_cycles=4)
    td = env.reset()
    td.set((G, "action"), torch.zeros(3, 2, dtype=torch.int64))
    out = env.step(td)["next"]
    kept = out[1:][G, "observation"].clone()
    out.set("_reset", torch.tensor([[True], [False], [False]]))
    again = env.reset(out)
    assert torch.equal(again[1:][G, "observation"], kept)  # copies 1, 2 go on
    assert env.venv.episode_steps.tolist() == [0, 1, 1]
    # a copy whose episode ended must be reset before it steps again (as a single env refuses)
    td = env.reset()
    for _ in range(4):
        td.set((G, "action"), torch.zeros(3, 2, dtype=torch.int64))
        out = env.step(td)
        td = out["next"]
    assert out["next", "done"].all()
    with pytest.raises(RuntimeError, match=r"copies \[0, 1, 2\] ended in the last step: reset them"):
        env.step(td)


def test_step_counter_truncation_resets_running_copies():
    """A transform that truncates (StepCounter) resets copies whose own episode goes on."""
    import torchrl
    from torchrl.envs import StepCounter, TransformedEnv

    if tuple(int(x) for x in torchrl.__version__.split(".")[:2]) < (0, 12):
        pytest.skip(
            "torchrl < 0.12's StepCounter cannot expand a batched root flag to the agents' (as SerialEnv)"
        )

    env = TransformedEnv(
        make_torchrl_env("mpg/Coordination-v0", seed=0, num_envs=4, n_agents=2, max_cycles=50), StepCounter(3)
    )
    td = env.rollout(9, break_when_any_done=False)
    assert td["next", "truncated"][:, 2::3].all() and not td["next", "truncated"][:, 0::3].any()
    assert (td["step_count"][:, ::3] == 0).all()


def test_reward_sum_as_benchmarl_adds_it():
    """BenchMARL's RewardSum(reset_keys=["_reset"]) sums each copy's episode and restarts at its end."""
    from torchrl.envs import RewardSum, TransformedEnv

    base = make_torchrl_env(
        "mpg/MultiTaskGridWorld-v0", seed=0, num_envs=4, layout="chain_slip", observation="own", max_cycles=5
    )
    td = TransformedEnv(base, RewardSum(reset_keys=["_reset"])).rollout(30, break_when_any_done=False)
    reward, total = td["next", G, "reward"], td["next", G, "episode_reward"]
    done = td["next", "done"][..., 0]
    for k in range(4):
        running = torch.zeros_like(reward[k, 0])
        for t in range(30):
            running = running + reward[k, t]
            assert torch.equal(total[k, t], running)
            if done[k, t]:
                running = torch.zeros_like(running)
    assert done.any()


def test_collector_on_the_batched_env():
    env = make_torchrl_env("mpg/Coordination-v0", seed=0, num_envs=8, n_agents=2, observation="vector")
    actor = _actor(4, 2)
    collector = _collector_class()(env, actor, frames_per_batch=80, total_frames=240)
    batches = list(collector)
    collector.shutdown()
    assert len(batches) == 3 and batches[0].batch_size == torch.Size([8, 10])
    assert batches[0]["next", G, "reward"].shape == torch.Size([8, 10, 2, 1])


@pytest.mark.parametrize(
    "bad", [0, -1, 1.5, "3", True, None.__class__], ids=["zero", "neg", "float", "str", "bool", "type"]
)
def test_bad_num_envs(bad):
    with pytest.raises(ValueError, match="num_envs"):
        make_torchrl_env("mpg/Coordination-v0", num_envs=bad)


def test_huge_num_envs_refused_before_allocating():
    with pytest.raises(mpg_envs.TooLargeError, match="num_envs"):
        make_torchrl_env("mpg/MultiTaskGridWorld-v0", num_envs=10**9, observation="own")


@pytest.mark.parametrize("num_envs", [None, 2])
def test_one_hot_of_a_huge_state_space_refused_before_torchrl_allocates_it(num_envs):
    """observation="state" on a 10x10 MultiTaskGridWorld is an index among 10^8 joint states: the
    wrapper's one-hot zeros took 6.6 GB and 12 s before any check."""
    match = r"observation tensors of (1 copy|2 copies) .* observe fewer values than the one-hot's 100,000,000"
    with pytest.raises(mpg_envs.TooLargeError, match=match):
        make_torchrl_env("mpg/MultiTaskGridWorld-v0", num_envs=num_envs, observation="state")


def test_bad_env_id_and_seed():
    with pytest.raises(ValueError, match="env_id"):
        make_torchrl_env("mpg/Nope-v0", num_envs=2)
    with pytest.raises(ValueError, match="seed"):
        make_torchrl_env("mpg/Coordination-v0", seed=-1, num_envs=2)
    with pytest.raises(ValueError, match="num_envs batches envs with vectorised dynamics"):
        make_torchrl_env("mpg/IndoorNav-v0", num_envs=2)  # refused before MiniWorld is imported


# ----------------------------------------------------------------------------- exact metrics
def _actor(n_features, n_actions, seed=0):
    from tensordict.nn import TensorDictModule
    from torchrl.modules import MLP, ProbabilisticActor

    torch.manual_seed(seed)
    net = torch.nn.Sequential(_Float(), MLP(in_features=n_features, out_features=n_actions, num_cells=[32]))
    module = TensorDictModule(net, in_keys=[(G, "observation")], out_keys=[(G, "logits")])
    return ProbabilisticActor(
        module,
        in_keys={"logits": (G, "logits")},
        out_keys=[(G, "action")],
        distribution_class=torch.distributions.Categorical,
        return_log_prob=True,
        log_prob_key=(G, "sample_log_prob"),
    )


class _Float(torch.nn.Module):
    """One-hot int64 observations (the index modes) -> float32 for the MLP."""

    def forward(self, x):
        return x.to(torch.float32)


def _by_hand(actor, observations, em):
    """The policy tabulated by hand: the actor's network on every state's observation."""
    net = actor.module[0].module
    with torch.no_grad():
        logits = net(torch.as_tensor(observations)).double()
    return em(torch.softmax(logits, dim=-1).numpy())


def _ppo(env, actor, iterations, frames):
    from tensordict.nn import TensorDictModule
    from torchrl.modules import MLP

    from baselines.torchrl_envs import ppo_loss

    n_features = env.observation_spec[G, "observation"].shape[-1]
    critic = TensorDictModule(
        torch.nn.Sequential(_Float(), MLP(in_features=n_features, out_features=1, num_cells=[32])),
        in_keys=[(G, "observation")],
        out_keys=[(G, "state_value")],
    )
    loss = ppo_loss(actor, critic, gamma=0.95, lmbda=0.95, group=G, normalize_advantage=False)
    opt = torch.optim.Adam(loss.parameters(), lr=3e-3)
    collector = _collector_class()(env, actor, frames_per_batch=frames, total_frames=frames * iterations)
    before = [p.detach().clone() for p in actor.parameters()]
    for batch in collector:
        with torch.no_grad():
            loss.value_estimator(
                batch, params=loss.critic_network_params, target_params=loss.target_critic_network_params
            )
        flat = batch.reshape(-1)
        for _ in range(4):
            out = loss(flat)
            total = out["loss_objective"] + out["loss_critic"] + out["loss_entropy"]
            opt.zero_grad()
            total.backward()
            opt.step()
    collector.shutdown()
    assert any(not torch.equal(a, b) for a, b in zip(before, actor.parameters()))  # it trained


def test_exact_metrics_after_ppo_on_the_batched_env():
    """A few PPO iterations (ClipPPOLoss, collector on the batched env); the helper's metrics are
    ExactMetrics' and mpg_envs.exact's on the policy tabulated by hand."""
    kw = {"n_agents": 2, "observation": "vector"}
    env = make_torchrl_env("mpg/Coordination-v0", seed=0, num_envs=16, **kw)
    actor = _actor(4, 2)
    _ppo(env, actor, iterations=3, frames=320)
    helper = TorchRLExactMetrics("mpg/Coordination-v0", **kw)
    got = helper(actor)
    em = ExactMetrics("mpg/Coordination-v0", **kw)
    want = _by_hand(actor, em.observations, em)
    assert set(got) == set(want) == set(helper.fields())
    for k in want:
        assert got[k] == pytest.approx(want[k], abs=1e-9), k
    # and mpg_envs.exact directly on the tables
    model = em.model
    with torch.no_grad():
        logits = actor.module[0].module(torch.as_tensor(em.observations)).double()
    probs = torch.softmax(logits, -1).numpy()
    tables = [probs[:, i] for i in range(2)]
    assert got["nash_gap"] == pytest.approx(float(exact.nash_gap(model, tables).gap), abs=1e-9)
    values = exact.evaluate(model, tables) @ model.mu
    assert got["value_0"] == pytest.approx(values[0], abs=1e-9)
    # the one-off form and a TorchRL env as the argument give the same
    assert exact_metrics(actor, env) == got


def test_exact_metrics_10x10_own_decomposed():
    kw = {"observation": "own", "max_cycles": 30}
    env = make_torchrl_env("mpg/MultiTaskGridWorld-v0", seed=0, num_envs=8, **kw)
    actor = _actor(100, 4)
    _ppo(env, actor, iterations=2, frames=240)
    helper = TorchRLExactMetrics(env)
    assert helper.metrics.decomposed and helper.observations.shape == torch.Size([100, 4, 100])
    assert helper.observations.dtype == env.observation_spec[G, "observation"].dtype
    got = helper(actor)
    em = ExactMetrics("mpg/MultiTaskGridWorld-v0", **kw)
    obs = torch.nn.functional.one_hot(torch.as_tensor(em.observations), 100)
    want = _by_hand(actor, obs, em)
    for k in want:
        assert got[k] == pytest.approx(want[k], abs=1e-9), k


@pytest.mark.parametrize("observation", ["state", "own", "vector", "onehot"])
def test_helper_observations_are_the_envs(observation):
    """The helper feeds the policy what the env emits in each state (one-hot for index modes)."""
    env = make_torchrl_env("mpg/Coordination-v0", seed=0, num_envs=4, n_agents=2, observation=observation)
    helper = TorchRLExactMetrics(env)
    td = env.rollout(20, break_when_any_done=False)
    obs = td["next", G, "observation"].reshape(-1, 2, *td["next", G, "observation"].shape[3:])
    states = td["next", G, "info", "state"][..., 0].reshape(-1).long()
    assert torch.equal(helper.observations[states], obs)


def test_helper_probs_key_and_refusals():
    from tensordict.nn import TensorDictModule

    helper = TorchRLExactMetrics("mpg/Coordination-v0", n_agents=2, observation="vector")
    uniform = TensorDictModule(
        lambda x: torch.full((*x.shape[:-1], 2), 0.5), in_keys=[(G, "observation")], out_keys=[(G, "probs")]
    )
    em = ExactMetrics("mpg/Coordination-v0", n_agents=2, observation="vector")
    want = em(np.full((em.n_states, 2, 2), 0.5))
    assert helper(uniform) == pytest.approx(want, abs=1e-12)
    other = TensorDictModule(lambda x: x, in_keys=[(G, "observation")], out_keys=[(G, "features")])
    with pytest.raises(ValueError, match="neither"):
        helper(other)
    with pytest.raises(TypeError, match="policy"):
        helper("not a policy")
    with pytest.raises(TypeError, match="group"):
        TorchRLExactMetrics("mpg/Coordination-v0", group=3)
    for bad in (float("nan"), float("inf")):
        diverged = TensorDictModule(
            lambda x, b=bad: torch.full((*x.shape[:-1], 2), b),
            in_keys=[(G, "observation")],
            out_keys=[(G, "logits")],
        )
        with pytest.raises(ValueError, match=r"the policy's logits must be finite, got (nan|inf)"):
            helper(diverged)
    elsewhere = TensorDictModule(
        lambda x: x, in_keys=[("agents", "observation")], out_keys=[("agents", "logits")]
    )
    with pytest.raises(ValueError, match=r"the policy reads \[\('agents', 'observation'\)\]"):
        helper(elsewhere)


def test_helper_takes_transformed_envs_and_refuses_others():
    from torchrl.envs import RewardSum, SerialEnv, TransformedEnv

    env = TransformedEnv(make_torchrl_env("mpg/Coordination-v0", num_envs=2, n_agents=3), RewardSum())
    assert TorchRLExactMetrics(env).metrics.n_agents == 3
    assert TorchRLExactMetrics(make_torchrl_env("mpg/Coordination-v0", n_agents=3)).metrics.n_agents == 3
    with pytest.raises(TypeError, match="got SerialEnv"):
        TorchRLExactMetrics(SerialEnv(2, lambda: make_torchrl_env("mpg/Coordination-v0")))
    with pytest.raises(ValueError, match="env_kwargs go with a registered id"):
        TorchRLExactMetrics(env, n_agents=2)


def test_ppo_loss_sets_every_key_under_the_group_and_checks_its_numbers():
    from torchrl.modules import MLP, ValueOperator

    from baselines.torchrl_envs import ppo_loss

    actor = _actor(4, 2)
    critic = ValueOperator(
        MLP(in_features=4, out_features=1, num_cells=[8]), [(G, "observation")], [(G, "state_value")]
    )
    loss = ppo_loss(actor, critic, gamma=0.9, lmbda=0.8)
    for key in ("reward", "done", "terminated", "value", "advantage", "value_target"):
        assert getattr(loss.tensor_keys, key)[0] == G, key
    assert float(loss.value_estimator.gamma) == pytest.approx(0.9)
    for bad in (dict(gamma=float("nan")), dict(lmbda=float("inf"))):
        with pytest.raises(ValueError, match=next(iter(bad))):
            ppo_loss(actor, critic, **bad)
