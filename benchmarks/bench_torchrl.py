"""TorchRL through ``baselines.torchrl_envs``: PPO and plain collection on the batched env vs on
``SerialEnv`` of single-env wrappers, and the cost of one exact-metrics evaluation.

* A TorchRL PPO loop (a collector, ``ClipPPOLoss`` with GAE, a shared MLP actor and critic on
  "vector" observations, 4 epochs of 2 minibatches per batch of 16 copies x 32 steps) on
  ``mpg/Coordination-v0`` N = 2, through ``make_torchrl_env(num_envs=16)`` (one env with
  ``batch_size=[16]`` stepping ``ParallelVectorEnv``) and through ``SerialEnv(16, wrapper)``
  (TorchRL's usual route for third-party envs): agent-steps/s of the whole loop, and of the
  collector alone (the same policy, no training), with their ratios taken in this run. The first
  batch of each run is a warm-up, not timed; each rate is the best of 3 runs, the routes in turn.
* One exact-metrics evaluation of a policy on the default 10x10 ``MultiTaskGridWorld-v0``
  (``observation="own"``: per-task models, 4 tasks x 100 cells) through ``TorchRLExactMetrics``:
  building it once (the task models) and each call (the network on every cell, then the exact
  values, best responses and potential).
* Plain collection on the batched env with 256 copies (how it scales with the batch).

Run: ``python benchmarks/bench_torchrl.py [--quick] [--update-reference]`` (main environment; it
also runs with BenchMARL's torchrl 0.11).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import add_output_args, best_of, report, save_results  # noqa: E402

G = "agent"
COPIES, STEPS = 16, 32  # one batch: 16 copies x 32 steps = 512 env frames = 1,024 agent-steps
KW = {"n_agents": 2, "observation": "vector"}


def _collector_class():
    try:
        from torchrl.collectors import Collector
    except ImportError:  # torchrl < 0.12
        from torchrl.collectors import SyncDataCollector as Collector
    return Collector


def _modules(n_features: int, n_actions: int, seed: int = 0):
    """A shared actor (logits) and critic, MLPs 64-64 on float observations (one-hot int64
    observations of the index modes are cast first)."""
    import torch
    from tensordict.nn import TensorDictModule
    from torchrl.modules import MLP, ProbabilisticActor, ValueOperator

    class Float(torch.nn.Module):
        def forward(self, x):
            return x.to(torch.float32)

    torch.manual_seed(seed)
    net = TensorDictModule(
        torch.nn.Sequential(Float(), MLP(in_features=n_features, out_features=n_actions, num_cells=[64, 64])),
        in_keys=[(G, "observation")],
        out_keys=[(G, "logits")],
    )
    actor = ProbabilisticActor(
        net,
        in_keys={"logits": (G, "logits")},
        out_keys=[(G, "action")],
        distribution_class=torch.distributions.Categorical,
        return_log_prob=True,
        log_prob_key=(G, "sample_log_prob"),
    )
    critic = ValueOperator(
        MLP(in_features=n_features, out_features=1, num_cells=[64, 64]),
        in_keys=[(G, "observation")],
        out_keys=[(G, "state_value")],
    )
    return actor, critic


def _loss(actor, critic, gamma: float):
    from baselines.torchrl_envs import ppo_loss

    return ppo_loss(actor, critic, gamma=gamma, lmbda=0.95, group=G, normalize_advantage=False)


def run(env, batches: int, train: bool, gamma: float = 0.95, copies: int = COPIES) -> float:
    """Agent-steps/s of ``batches`` timed batches (after one warm-up batch) of a collector on
    ``env``, with a PPO update on each batch if ``train``."""
    import torch

    n_features = env.observation_spec[G, "observation"].shape[-1]
    actor, critic = _modules(n_features, 2)
    loss = _loss(actor, critic, gamma) if train else None
    opt = torch.optim.Adam(loss.parameters(), lr=3e-4) if train else None
    frames = copies * STEPS
    collector = _collector_class()(env, actor, frames_per_batch=frames, total_frames=frames * (batches + 1))
    n_agents = env.action_spec.shape[-1]
    t0 = None
    for batch in collector:
        if train:
            with torch.no_grad():
                loss.value_estimator(
                    batch, params=loss.critic_network_params, target_params=loss.target_critic_network_params
                )
            flat = batch.reshape(-1)
            for _ in range(4):  # epochs
                for idx in torch.randperm(len(flat)).split(len(flat) // 2):  # 2 minibatches
                    out = loss(flat[idx])
                    total = out["loss_objective"] + out["loss_critic"] + out["loss_entropy"]
                    opt.zero_grad()
                    total.backward()
                    opt.step()
        if t0 is None:
            t0 = time.perf_counter()  # after the warm-up batch
    secs = time.perf_counter() - t0
    collector.shutdown()
    return batches * frames * n_agents / secs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="one timed batch per route (smoke test)")
    add_output_args(ap)
    args = ap.parse_args()
    warnings.filterwarnings("ignore", message=".*PettingZoo in TorchRL is tested.*")
    warnings.filterwarnings("ignore", message=".*missing transforms required by the policy.*")
    import numpy as np
    import torch
    from torchrl.envs import SerialEnv

    from baselines.threads import torch_threads
    from baselines.torchrl_envs import TorchRLExactMetrics, make_torchrl_env

    torch_threads()  # our policy for small networks (bench_threads.py measures it)
    rows, notes = [], []
    fast, slow = (2, 1) if args.quick else (16, 4)  # timed batches: batched env, SerialEnv
    repeats = 1 if args.quick else 3  # best of, each route in turn (the machine is shared)

    def batched():
        return make_torchrl_env("mpg/Coordination-v0", seed=0, num_envs=COPIES, **KW)

    def serial():
        env = SerialEnv(COPIES, lambda: make_torchrl_env("mpg/Coordination-v0", **KW))
        env.set_seed(0)
        return env

    rates = {}
    for train, what in ((False, "collection only"), (True, "PPO (collector + ClipPPOLoss)")):
        routes = (("batched env", batched, fast), ("SerialEnv of 16 wrappers", serial, slow))
        for _ in range(repeats):  # interleaved, so both routes see the same machine load
            for label, make, batches in routes:
                rate = run(make(), batches, train)
                rates[(train, label)] = max(rates.get((train, label), 0.0), rate)
        for label, _, _ in routes:
            name = f"{what}, coordination N=2, {label} ({COPIES} copies)"
            rows.append((name, rates[(train, label)], "agent-steps/s", None))
        ratio = rates[(train, "batched env")] / rates[(train, "SerialEnv of 16 wrappers")]
        rows.append((f"  {what}: batched env / SerialEnv", ratio, "value", None))
    wide = make_torchrl_env("mpg/Coordination-v0", seed=0, num_envs=256, **KW)
    rate = max(run(wide, fast, False, copies=256) for _ in range(repeats))
    rows.append(("collection only, coordination N=2, batched env (256 copies)", rate, "agent-steps/s", None))
    # ---------------------------------------------------------------- exact metrics
    kw = {"observation": "own"}
    t0 = time.perf_counter()
    helper = TorchRLExactMetrics("mpg/MultiTaskGridWorld-v0", **kw)
    build = time.perf_counter() - t0
    S, N, K = helper.observations.shape
    actor, _ = _modules(K, 4)
    call = best_of(lambda: helper(actor), 3 if args.quick else 7)
    metrics = helper(actor)
    rows.append(("TorchRLExactMetrics, 10x10 MultiTaskGridWorld (own): build once", build, "s", None))
    rows.append(("TorchRLExactMetrics, 10x10 MultiTaskGridWorld (own): one evaluation", call, "s", None))
    notes.append(
        f"Exact metrics of a 10x10 MultiTaskGridWorld policy: decomposed={helper.metrics.decomposed}, "
        f"observations {S} cells x {N} agents x {K} (one-hot); an untrained network's Nash gap "
        f"{metrics['nash_gap']:.4g}."
    )
    notes.append(
        f"Batches of {COPIES} copies x {STEPS} steps; {fast} timed batches on the batched env, {slow} on "
        f"SerialEnv, one warm-up batch each, best of {repeats} interleaved runs; torch {torch.__version__}, "
        f"numpy {np.__version__}."
    )
    out = report(rows)
    for n in notes:
        print(n)
    save_results("torchrl", args, results=out, notes=notes, quick=args.quick)


if __name__ == "__main__":
    main()
