"""Neural softmax policies and their gradients, against independent oracles: the sampled action
frequencies, finite differences of exact.evaluate, the tabular softmax they reduce to, and the
exact gradient that sampled REINFORCE must converge to."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from baselines.algorithms import IPG, make_algorithm  # noqa: E402
from baselines.estimators import ExactEstimator  # noqa: E402
from baselines.policies import TabularSoftmaxPolicy  # noqa: E402
from baselines.policies.neural import TorchSoftmaxPolicy  # noqa: E402
from baselines.sampler import SampledEstimator  # noqa: E402
from mpg_envs import congestion_v0, coordination_v0, exact  # noqa: E402

torch.set_num_threads(1)


def _net(env, **kw):
    kw = {"hidden": "4,4", "dtype": "float64", "rng": np.random.default_rng(0), **kw}
    return TorchSoftmaxPolicy.mlp(env.dynamics, **kw)


def test_table_equals_the_action_distribution_on_every_state():
    env = coordination_v0.parallel_env(n_agents=2)
    pol = _net(env, hidden="auto", dtype="float32")  # paper 003's 2^N-FC(2^N)-FC(2^N)-Linear(2)
    dyn = env.dynamics
    tables = pol.table(dyn)
    assert [t.shape for t in tables] == [(4, 2), (4, 2)] and tables[0].dtype == np.float64
    exact.check_policy(env.model(), tables)  # float64 rows summing to 1
    obs = dyn.observe(dyn.states(), "onehot")
    n = 20_000
    rng = np.random.default_rng(1)
    for s in range(dyn.n_states):
        acts = pol.act(np.repeat(obs[s : s + 1], n, axis=0), rng)
        for i in range(2):
            freq = np.bincount(acts[:, i], minlength=2) / n
            p = tables[i][s]
            assert np.all(np.abs(freq - p) <= 5 * np.sqrt(p * (1 - p) / n) + 1e-12), (s, i, freq, p)
            np.testing.assert_array_equal(pol.probs(i, obs[s : s + 1, i])[0], p)


def _exact_gradients(pol, model):
    """d V_i(mu) / d theta_i for every agent, by back-propagation through the table."""
    tables_t = pol.torch_tables()
    est = ExactEstimator(model).estimate([t.detach().numpy() for t in tables_t])
    grads = []
    for i, (t, g) in enumerate(zip(tables_t, est.direct_gradients())):
        params = list(pol.nets[i].parameters())
        grads.append(torch.autograd.grad((torch.as_tensor(g) * t).sum(), params, retain_graph=True))
    return grads


def test_exact_gradient_equals_finite_differences():
    env = coordination_v0.parallel_env(n_agents=2, gamma=0.9)
    model = env.model()
    pol = _net(env)
    grads = _exact_gradients(pol, model)
    h = 1e-6
    for i in range(2):
        for p, g in zip(pol.nets[i].parameters(), grads[i]):
            flat, gflat = p.data.view(-1), g.view(-1)
            for k in range(0, flat.numel(), max(1, flat.numel() // 5)):  # a few entries per tensor
                old = flat[k].item()
                vals = []
                for x in (old + h, old - h):
                    flat[k] = x
                    vals.append(exact.evaluate(model, pol.table(env.dynamics))[i] @ model.mu)
                flat[k] = old
                fd = (vals[0] - vals[1]) / (2 * h)
                assert abs(fd - gflat[k].item()) <= 1e-6 * max(1.0, abs(fd)), (i, k, fd, gflat[k].item())


def test_bias_free_linear_network_on_one_hot_is_tabular_softmax():
    """Its NN-PG (SGD) step, log barrier included, equals the tabular IPG step."""
    env = coordination_v0.parallel_env(n_agents=3)
    model = env.model()
    pol = _net(env, hidden="", bias=False)
    logits = [net[0].weight.detach().numpy().T.copy() for net in pol.nets]  # (S, K) per agent
    tab = TabularSoftmaxPolicy(logits)
    for t1, t2 in zip(pol.table(env.dynamics), tab.tables()):
        np.testing.assert_allclose(t1, t2, atol=1e-14)
    eta, lam = 0.3, 0.2
    nn = make_algorithm("nn_pg", lr=eta, log_barrier=lam, hidden="", bias=False, dtype="float64")
    nn._make_optimizer(pol)
    est = ExactEstimator(model)
    for _ in range(3):
        nn.update(pol, est)
        IPG(eta=eta, log_barrier=lam).update(tab, est)
    for net, th in zip(pol.nets, tab.logits):
        np.testing.assert_allclose(net[0].weight.detach().numpy().T, th, atol=1e-10)


def _reinforce_gradient(pol, rein, est) -> np.ndarray:
    obj = rein.objective(pol, est)
    g = torch.autograd.grad(obj, list(pol.parameters()))
    return torch.cat([x.reshape(-1) for x in g]).numpy()


def test_sampled_gradient_converges_to_the_exact_one():
    """Episodes end within the horizon (terminate at t), so REINFORCE estimates the exact gradient;
    its error must fall like 1 / sqrt(batch) and the mean of many batches must agree within 5 SE."""
    env = congestion_v0.parallel_env(n_agents=2, at_sink="terminate", gamma=0.9)
    model = env.model()
    pol = _net(env, obs_mode="onehot")
    with torch.no_grad():  # moderate probabilities: the score function's tails stay light
        for p in pol.parameters():
            p.mul_(0.3)
    exact_g = torch.cat([x.reshape(-1) for gi in _exact_gradients(pol, model) for x in gi]).numpy()
    rein = make_algorithm("reinforce", baseline="none", hidden="4,4", dtype="float64")
    errs = {}
    for batch, reps in ((100, 40), (1600, 40)):
        rng = np.random.default_rng(batch)
        est = SampledEstimator(env.dynamics, model.gamma, horizon=5, batch=batch, rng=rng)
        samples = np.stack([_reinforce_gradient(pol, rein, est) for _ in range(reps)])
        se = samples.std(axis=0, ddof=1) / np.sqrt(reps)
        dev = samples.mean(axis=0) - exact_g
        # the mean of the batches agrees with the exact gradient within its standard error
        assert np.linalg.norm(dev) <= 4 * np.linalg.norm(se), (np.linalg.norm(dev), np.linalg.norm(se))
        errs[batch] = np.sqrt(((samples - exact_g) ** 2).sum(axis=1)).mean()
    assert errs[1600] < errs[100] / 2.5  # 16x the batch: ~1/4 of the error


def test_torch_init_is_pytorch_default_for_linear_layers():
    """init="torch" draws what ``nn.Linear.reset_parameters`` draws (kaiming_uniform_ with a = sqrt(5),
    bias U(+-1/sqrt(fan_in))) from the policy's own generator, and starts near uniform; init="normal"
    (every parameter N(0, 1), paper 003's text) saturates most rows at N = 5."""
    import math

    env = coordination_v0.parallel_env(n_agents=5)
    seed = np.random.default_rng(3)
    pol = TorchSoftmaxPolicy.mlp(env.dynamics, hidden="auto", init="torch", rng=np.random.default_rng(3))
    gen = torch.Generator().manual_seed(int(seed.integers(2**62)))
    for net in pol.nets:
        for layer in (m for m in net if isinstance(m, torch.nn.Linear)):
            w = torch.empty_like(layer.weight)
            torch.nn.init.kaiming_uniform_(w, a=math.sqrt(5), generator=gen)
            torch.testing.assert_close(layer.weight, w, rtol=0, atol=1e-7)
            bound = 1 / math.sqrt(layer.in_features)
            b = torch.empty_like(layer.bias).uniform_(-bound, bound, generator=gen)
            torch.testing.assert_close(layer.bias, b, rtol=0, atol=1e-7)

    def saturated(init: str) -> float:
        shares = []
        for s in range(10):
            p = TorchSoftmaxPolicy.mlp(env.dynamics, hidden="auto", init=init, rng=np.random.default_rng(s))
            shares.append((np.stack(p.table(env.dynamics)).max(axis=-1) > 0.99).mean())
        return float(np.mean(shares))

    assert saturated("torch") == 0.0
    assert saturated("normal") > 0.7
    with pytest.raises(ValueError, match="init must be one of"):
        TorchSoftmaxPolicy.mlp(env.dynamics, init="xavier")


def test_tabular_policies_refuse_the_torch_init():
    with pytest.raises(ValueError, match="'torch' is for networks"):
        TabularSoftmaxPolicy.init(4, (2, 2), np.random.default_rng(0), "torch")
