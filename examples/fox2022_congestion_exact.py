"""Paper 001 (Fox et al.), Figs. 4-6 with exact advantages: IPG vs INPG on the congestion game.

Independent policy gradient (theta_i += eta * dV_i/dtheta_i) and independent natural policy
gradient (theta_i += eta / (1 - gamma) * A_i, paper 001 Lemma 2.1) run from the same standard-normal
initial logits on ``mpg/Congestion-v0`` (default graph, gamma = 0.99), with gradients and
advantages from the exact model. Writes, under ``--out``:

* ``l1_accuracy.png``: L1-accuracy to the final policy (paper 001's metric), mean +- std over seeds,
  IPG vs INPG for N = 4, and INPG for N = 8 (Fig. 6);
* ``nash_gap.png``: exact Nash gap along the runs;
* ``summary.json`` and ``curves.csv``: iterations to convergence and the curves.

The paper's runs use sampled estimates (T = 20, batch 20, eta = 1e-4); the sampled reproduction comes
with the baselines package. Run ``python examples/fox2022_congestion_exact.py --help``.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np

from mpg_envs import congestion_v0, exact

try:
    from tqdm import tqdm
except ImportError:  # progress bars are optional

    def tqdm(it, **_):  # type: ignore[no-redef]
        return it


def run(model, algo: str, logits0: list[np.ndarray], eta: float, iters: int, gap_every: int):
    """One run; returns per-iteration policies' L1 trace inputs and the Nash-gap trace."""
    th = [t.copy() for t in logits0]
    policies, gaps = [], []
    for it in range(iters + 1):
        pol = exact.softmax_policy(th)
        policies.append(pol)
        if it % gap_every == 0 or it == iters or (it < 200 and it % 5 == 0):
            gaps.append((it, exact.nash_gap(model, pol).gap))
        if it == iters:
            break
        if algo == "ipg":
            step = [eta * g for g in exact.policy_gradient(model, pol)]
        else:
            step = [eta / (1 - model.gamma) * a for a in exact.advantages(model, pol)]
        th = [t + d for t, d in zip(th, step)]
    final = policies[-1]
    l1 = np.array([exact.l1_distance(p, final) for p in policies])
    return l1, gaps


def first_below(curve: np.ndarray, tol: float) -> int | None:
    """First index from which the curve stays below tol; None if it is not below tol at the end
    except by definition (L1-accuracy to the final policy is 0 at the last iterate)."""
    above = np.flatnonzero(curve[:-1] >= tol)
    if above.size == 0:
        return 0
    return int(above[-1] + 1) if above[-1] + 1 < len(curve) - 1 else None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=10, help="random initialisations (paper: 10)")
    ap.add_argument("--iters", type=int, default=3000, help="iterations for N=4 (paper: ~3000)")
    ap.add_argument("--iters-n8", type=int, default=200, help="INPG iterations for N=8 (paper: <100 needed)")
    ap.add_argument("--eta", type=float, default=0.1, help="step size eta, same for IPG and INPG")
    ap.add_argument("--tol", type=float, default=1e-3, help="L1-accuracy defining convergence")
    ap.add_argument("--gap-tol", type=float, default=1e-3, help="Nash gap defining convergence")
    ap.add_argument(
        "--gap-every",
        type=int,
        default=25,
        help="evaluate the exact Nash gap every k iterations (every 5 before 200)",
    )
    ap.add_argument("--out", type=Path, default=Path("results/fox2022_congestion_exact"))
    ap.add_argument("--quick", action="store_true", help="3 seeds, 600 / 60 iterations (smoke test)")
    args = ap.parse_args()
    if args.quick:
        args.seeds, args.iters, args.iters_n8 = 3, 600, 60
    if args.seeds < 1 or args.iters < 1 or args.iters_n8 < 1 or args.eta <= 0:
        ap.error("--seeds, --iters, --iters-n8 must be >= 1 and --eta > 0")
    args.out.mkdir(parents=True, exist_ok=True)

    jobs = [(4, "ipg", args.iters), (4, "inpg", args.iters), (8, "inpg", args.iters_n8)]
    curves: dict[str, np.ndarray] = {}
    gap_curves: dict[str, list] = {}
    summary: dict[str, dict] = {}
    for n, algo, iters in jobs:
        model = congestion_v0.parallel_env(n_agents=n).model()
        key = f"{algo.upper()} N={n}"
        l1s, gaps = [], []
        for seed in tqdm(range(args.seeds), desc=key):
            rng = np.random.default_rng(seed)
            logits0 = [rng.normal(size=(model.n_states, k)) for k in model.action_sizes]
            l1, gap = run(model, algo, logits0, args.eta, iters, args.gap_every)
            l1s.append(l1)
            gaps.append(gap)
        L = np.stack(l1s)
        curves[key] = L
        gap_curves[key] = gaps
        conv = [first_below(c, args.tol) for c in L]
        gap_its = np.array([[it for it, _ in g] for g in gaps])
        gap_vals = np.array([[v for _, v in g] for g in gaps])
        gap_conv = []
        for its, v in zip(gap_its, gap_vals):
            above = np.flatnonzero(v >= args.gap_tol)
            k = 0 if above.size == 0 else above[-1] + 1
            gap_conv.append(int(its[k]) if k < len(v) else None)
        summary[key] = {
            "n_states": model.n_states,
            "iterations": iters,
            "iterations_to_l1_below_tol": conv,  # None: only at the last iterate, by definition
            "final_nash_gap": {"max_over_seeds": float(max(g[-1][1] for g in gaps))},
            "iterations_to_nash_gap_below_gap_tol": gap_conv,
        }
        reached = [c for c in gap_conv if c is not None]
        l1_reached = [c for c in conv if c is not None]
        print(
            f"{key}: Nash gap < {args.gap_tol} in {len(reached)}/{len(gap_conv)} runs"
            + (f" after {np.mean(reached):.0f} iterations on average (max {max(reached)})" if reached else "")
            + f"; L1-accuracy < {args.tol} before the end in {len(l1_reached)}/{len(conv)} runs; "
            f"final Nash gap <= {summary[key]['final_nash_gap']['max_over_seeds']:.2e}"
        )

    (args.out / "summary.json").write_text(
        json.dumps({"config": {k: str(v) for k, v in vars(args).items()}, "results": summary}, indent=2)
    )
    with open(args.out / "curves.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["run", "seed", "iteration", "l1_accuracy"])
        for key, L in curves.items():
            for seed, row in enumerate(L):
                for it in range(0, len(row), max(1, len(row) // 500)):
                    w.writerow([key, seed, it, f"{row[it]:.6g}"])
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: skipping plots (pip install 'mpg-envs[plots]')")
        return
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, keys, title in [
        (axes[0], ["IPG N=4", "INPG N=4"], "Congestion game, N = 4 (paper 001 Fig. 5)"),
        (axes[1], ["INPG N=8"], "Congestion game, N = 8, INPG (Fig. 6)"),
    ]:
        for key in keys:
            L = curves[key][:, :-1]  # the last iterate is the final policy: L1 = 0 by definition
            m, s = L.mean(axis=0), L.std(axis=0)
            x = np.arange(len(m))
            ax.semilogy(x, np.maximum(m, 1e-12), label=key)
            ax.fill_between(x, np.maximum(m - s, 1e-12), np.maximum(m + s, 1e-12), alpha=0.25)
        ax.set(xlabel="iteration", ylabel="L1-accuracy to final policy (floor 1e-12)", title=title)
        ax.set_ylim(bottom=1e-12)
        ax.legend()
    fig.tight_layout()
    fig.savefig(args.out / "l1_accuracy.png", dpi=120)
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, gaps in gap_curves.items():
        its = [it for it, _ in gaps[0]]
        G = np.array([[g for _, g in run_gaps] for run_gaps in gaps])
        ax.semilogy(its, np.maximum(G.mean(axis=0), 1e-14), label=key)
    ax.set_ylim(bottom=1e-14)
    ax.set(xlabel="iteration", ylabel="exact Nash gap (mean over seeds)", title="Nash gap, exact advantages")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out / "nash_gap.png", dpi=120)
    print(f"wrote {args.out}/l1_accuracy.png, nash_gap.png, summary.json, curves.csv")


if __name__ == "__main__":
    main()
