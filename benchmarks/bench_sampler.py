"""Benchmark the batched sampler and sampled INPG on the distancing game.

Prints a table and writes ``benchmarks/results/sampler.json``.

* Sampler throughput (agent-steps/s of live episodes) of :class:`baselines.sampler.BatchSampler`
  for every registered env (default kwargs, except congestion N = 8 and coordination N = 5), with
  B = 4096 episodes of T = 20 steps under a random policy; plus the small batches INPG uses.
  The default multi-task grid (4 tasks on 10x10 grids) has 100^4 joint states, too many for
  per-state policy tables, so its agents read their own cell (``observe=own_observation``).
* Sampled INPG on the distancing game (paper 001 §4.1): N = 8, T = 20, batch 20, gamma = 0.99,
  eta = 1e-4, ``theta_i += eta / (1 - gamma) * A_i`` with advantages from
  :class:`~baselines.sampler.SampledEstimator`, from standard-normal logits, until the L1
  change between consecutive policies (``exact.l1_distance``) is below 1e-6 (or a cap on the
  iterations). The exact Nash gap of the final policy is reported beside it.

Targets (issue): >= 2,000,000 agent-steps/s on distancing N = 8; INPG run <= 5 s.

Usage::

    python benchmarks/bench_sampler.py [--quick] [--inpg-seeds K]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pettingzoo
from common import add_output_args, best_of, report, save_results

import mpg_envs
from baselines.sampler import BatchSampler, SampledEstimator
from mpg_envs import exact

#: (env id, kwargs) per registered env: default kwargs except the stated agent counts.
CONFIGS = {
    "mpg/Congestion-v0": {"n_agents": 8},
    "mpg/Coordination-v0": {"n_agents": 5},
    "mpg/Distancing-v0": {},
    "mpg/MultiTaskGridWorld-v0": {},
}
THROUGHPUT_TARGET = 2_000_000  # distancing N = 8
INPG_TARGET_S = 5.0
INPG_MAX_ITERS = 20_000


def _label(env_id: str, kw: dict) -> str:
    return env_id.split("/")[1] + "".join(f" {k}={v}" for k, v in kw.items())


def _random_tables(n_rows: int, sizes: tuple[int, ...], rng: np.random.Generator) -> list[np.ndarray]:
    return [rng.dirichlet(np.ones(k), size=n_rows) for k in sizes]


def sampler_throughput(env_id: str, kw: dict, n_episodes: int, horizon: int, reps: int) -> tuple[float, str]:
    """Live agent-steps per second of ``BatchSampler.rollout`` (best of ``reps``), and a note."""
    env = pettingzoo.make("parallel", env_id, **kw).unwrapped
    dyn = env.dynamics
    rng = np.random.default_rng(0)
    if dyn.n_states <= 1 << 20:
        sampler, pol, note = BatchSampler(dyn, rng), _random_tables(dyn.n_states, dyn.action_sizes, rng), ""
    else:
        sampler = BatchSampler(dyn, rng, observe=env.own_observation)
        pol = _random_tables(env.own_observation_size, dyn.action_sizes, rng)
        note = f" (S={dyn.n_states:.0e}: own-cell policies)"
    live = []

    def run() -> None:
        ro = sampler.rollout(pol, n_episodes, horizon)
        live.append(int(ro.alive.sum()) * dyn.n_agents)

    t = best_of(run, reps)
    return min(live) / t, note


def sampled_inpg(
    seed: int, *, eta: float = 1e-4, gamma: float = 0.99, horizon: int = 20, batch: int = 20
) -> dict:
    """Sampled INPG on the distancing game N = 8 until the L1 change < 1e-6 (or the cap)."""
    env = pettingzoo.make("parallel", "mpg/Distancing-v0", gamma=gamma).unwrapped
    dyn = env.dynamics
    init_rng, est_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    theta = [init_rng.standard_normal((dyn.n_states, k)) for k in dyn.action_sizes]
    est = SampledEstimator(dyn, gamma, horizon=horizon, batch=batch, rng=est_rng)
    step = eta / (1.0 - gamma)
    pol = exact.softmax_policy(theta)
    change = np.inf
    it = 0
    t0 = time.perf_counter()
    while it < INPG_MAX_ITERS:
        it += 1
        adv = est.estimate(pol).advantages()
        theta = [th + step * a for th, a in zip(theta, adv)]
        new = exact.softmax_policy(theta)
        change = exact.l1_distance(pol, new)
        pol = new
        if change < 1e-6:
            break
    wall = time.perf_counter() - t0
    model = env.model()
    gap = exact.nash_gap(model, pol)
    scale = float(np.abs(exact.evaluate(model, pol) @ model.mu).max())
    counts = np.sum(pol, axis=0)  # (S, K): expected agents per facility in (safe, distancing)
    return {
        "seed": seed,
        "iterations": it,
        "wall_s": wall,
        "ms_per_iteration": 1e3 * wall / it,
        "final_l1_change": change,
        "converged": bool(change < 1e-6),
        "nash_gap_at_mu_max": float(gap.at_mu.max()),
        "relative_nash_gap": float(gap.at_mu.max()) / scale,
        "facility_counts_safe": np.round(counts[0], 3).tolist(),
        "facility_counts_distancing": np.round(counts[1], 3).tolist(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (smoke test)")
    ap.add_argument(
        "--inpg-seeds",
        type=int,
        default=10,
        help="INPG runs (seeds 0..K-1); seed 0 is timed against the target",
    )
    add_output_args(ap)
    args = ap.parse_args()
    reps = 2 if args.quick else 5

    rows = []
    for env_id, kw in CONFIGS.items():
        if env_id not in mpg_envs.ENV_IDS:
            continue
        rate, note = sampler_throughput(env_id, kw, 4096, 20, reps)
        target = THROUGHPUT_TARGET if env_id == "mpg/Distancing-v0" else None
        rows.append((f"sampler B=4096 T=20: {_label(env_id, kw)}{note}", rate, "agent-steps/s", target))
    for b in (20, 256):
        rate, _ = sampler_throughput("mpg/Distancing-v0", {}, b, 20, reps * 4)
        rows.append((f"sampler B={b} T=20: Distancing-v0", rate, "agent-steps/s", None))
    dist = pettingzoo.make("parallel", "mpg/Distancing-v0").unwrapped
    est = SampledEstimator(dist.dynamics, 0.99, rng=0)
    pol = _random_tables(2, dist.dynamics.action_sizes, np.random.default_rng(0))
    rows.append(
        (
            "SampledEstimator.estimate B=20 T=20: Distancing-v0",
            best_of(lambda: est.estimate(pol), 200),
            "s",
            None,
        )
    )

    runs = [sampled_inpg(seed) for seed in range(max(1, args.inpg_seeds))]
    first = runs[0]
    rows.append(("sampled INPG distancing N=8 (seed 0): wall time", first["wall_s"], "s", INPG_TARGET_S))

    out = report(rows)

    print(f"\nsampled INPG, distancing N=8, T=20, batch 20, eta=1e-4, gamma=0.99 (cap {INPG_MAX_ITERS:,})")
    print(
        f"{'seed':>4} {'iters':>7} {'wall s':>7} {'ms/it':>6} {'L1 change':>10} {'Nash gap':>9} {'rel.':>7}"
        "  expected agents per facility A-D: safe | distancing"
    )
    for r in runs:
        print(
            f"{r['seed']:>4} {r['iterations']:>7} {r['wall_s']:>7.2f} {r['ms_per_iteration']:>6.2f} "
            f"{r['final_l1_change']:>10.2e} {r['nash_gap_at_mu_max']:>9.3g} {r['relative_nash_gap']:>7.1e}  "
            f"{r['facility_counts_safe']} | {r['facility_counts_distancing']}"
        )
    near = sum(r["relative_nash_gap"] < 0.01 for r in runs)
    print(f"runs ending within 1% of a Nash equilibrium (exact gap / max |V_i(mu)|): {near}/{len(runs)}")
    save_results(
        "sampler",
        args,
        results=out,
        inpg=runs,
        inpg_near_nash=near,
        inpg_max_iterations=INPG_MAX_ITERS,
        quick=args.quick,
    )


if __name__ == "__main__":
    main()
