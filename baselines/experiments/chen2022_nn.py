"""Paper 003 (Chen, Zhang, Doan 2022) Fig. 2: neural softmax policies on the coordination game.

NN-PG (SGD) and NN-Adam, each without and with the log barrier, beside Softmax-PG and Softmax-NPG
of Fig. 1, N = 2, 3, 5, exact gradients (back-propagated through each network's table), 400
iterations, learning rate 0.1 (App. G), paper 003's network (one-hot global state, 2^N-FC(2^N)-
FC(2^N)-Linear(2)-softmax, ReLU: the paper does not name the activation), every parameter N(0, 1)
as the paper's "initial policy parameters sampled from N(0, 1)". The barrier weight lambda is
searched over {0.01, 0.1, 1, 10, 100} per algorithm and N and the best final POA kept, as the paper
did. The paper averages 10 initialisations for Fig. 2's tabular curves and 20 for its NN curves;
we run 20 and report the first 10 and all 20.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from baselines.experiments.chen2022 import GAMMA, NS, _band, _median, _se
from baselines.experiments.common import (
    Context,
    Curve,
    column,
    first_below,
    fmt,
    gap_value,
    iterations,
    plt,
    run_grid,
    stack,
    write_curves,
)
from baselines.train import TrainConfig

__all__ = ["CoordinationNN"]

LAMBDAS = (0.01, 0.1, 1.0, 10.0, 100.0)
LR = 0.1
GAP_TOL = 1e-3
COLORS = {"Softmax-PG": "C0", "Softmax-NPG": "C1", "NN-PG": "C3", "NN-Adam": "C4"}
ALGOS = {  # name -> (algo, algo_kwargs without the barrier)
    "Softmax-PG": ("ipg", {"eta": LR}),
    "Softmax-NPG": ("inpg", {"eta": LR * (1 - GAMMA)}),  # paper 003's theta += 0.1 A
    "NN-PG": ("nn_pg", {"lr": LR, "optimizer": "sgd"}),
    "NN-Adam": ("nn_pg", {"lr": LR, "optimizer": "adam"}),
}
BARRIER = ("Softmax-PG", "NN-PG", "NN-Adam")


def _curves(N: int, seeds: list[int], out: str, iters: int, lambdas: tuple[float, ...]) -> list[Curve]:
    base = TrainConfig(
        env="mpg/Coordination-v0",
        env_kwargs={"n_agents": N},
        estimator="exact",
        iters=iters,
        eval_every=4,
        eval_log=True,
        out=out,
    )
    curves = []
    for name, (algo, kw) in ALGOS.items():
        for lam in (0.0, *(lambdas if name in BARRIER else ())):
            cfg = replace(base, algo=algo, algo_kwargs={**kw, **({"log_barrier": lam} if lam else {})})
            label = f"N={N} {name}" + (f" + barrier {lam:g}" if lam else "")
            meta = {"algorithm": name, "lambda": lam, "n_agents": N}
            curves.append(
                Curve(label, [replace(cfg, seed=s) for s in seeds], COLORS[name], "--" if lam else "-", meta)
            )
    return curves


def _stats(runs, k: int) -> dict:
    its = iterations(runs[0])
    poa = stack([column(r, "poa") for r in runs[:k]])
    gap = np.vectorize(gap_value)(stack([column(r, "nash_gap") for r in runs[:k]]))
    to_gap = [first_below(g, its, GAP_TOL) for g in gap]
    return {
        "runs": len(poa),
        "final_poa": {"mean": float(poa[:, -1].mean()), "se": float(_se(poa)[-1])},
        "final_nash_gap": {"mean": float(gap[:, -1].mean()), "se": float(_se(gap)[-1])},
        "converged": sum(x is not None for x in to_gap),
        "median_iterations_to_gap": _median(to_gap),
        "per_seed_poa": [float(x) for x in poa[:, -1]],
    }


class CoordinationNN:
    """``chen2022-coordination-nn``: paper 003 Fig. 2."""

    NAME = "chen2022-coordination-nn"
    TITLE = "Paper 003, coordination game, neural policies (Fig. 2)"
    PAPER = "Chen, Zhang, Doan 2022, §5.2"
    DESCRIPTION = (
        "NN-PG (SGD) and NN-Adam with and without the log barrier beside Softmax-PG and Softmax-NPG, "
        "exact gradients, N = 2, 3, 5, 400 iterations, learning rate 0.1 (Softmax-NPG: `theta += 0.1 A`), "
        "paper 003's network (one-hot state, two hidden layers of width 2^N, ReLU), all parameters N(0, 1). "
        "Lambda searched over {0.01, 0.1, 1, 10, 100} per algorithm and N, the best final POA kept (over all "
        "runs), as the paper. 20 initialisations; the paper's 10 are the first 10. Converged: exact Nash gap "
        "below 1e-3 from some "
        "iteration on."
    )

    @staticmethod
    def run(ctx: Context) -> dict:
        seeds = ctx.seed_list(20, 3)
        iters = 400 if ctx.full else 150
        lambdas = LAMBDAS if ctx.full else (0.1, 10.0)
        out = str(ctx.out / "runs")
        per_n = {N: _curves(N, seeds, out, iters, lambdas) for N in NS}
        curves = [c for cs in per_n.values() for c in cs]
        results = run_grid(CoordinationNN.NAME, curves, ctx)
        k10 = min(10, len(seeds))
        summary: dict[str, dict] = {}
        for c in curves:
            runs = results[c.label]
            summary[c.label] = {
                **c.meta,
                "label": c.label,
                "all": _stats(runs, len(runs)),
                "first10": _stats(runs, k10),
            }
        chosen: dict[str, dict] = {}  # N / algorithm -> the plain and the best-lambda curve
        for N in NS:
            for name in ALGOS:
                cands = [s for s in summary.values() if s["n_agents"] == N and s["algorithm"] == name]
                plain = next(s for s in cands if s["lambda"] == 0)
                reg = [s for s in cands if s["lambda"] > 0]
                best = max(reg, key=lambda s: s["all"]["final_poa"]["mean"]) if reg else None
                chosen[f"N={N} {name}"] = {
                    "plain": plain["label"],
                    "best_lambda": best["lambda"] if best else None,
                    "regularised": best["label"] if best else None,
                }
        series = {}
        for c in curves:
            runs = results[c.label]
            its = iterations(runs[0])
            series[f"{c.label} POA"] = (its, stack([column(r, "poa") for r in runs]))
            series[f"{c.label} Nash gap"] = (its, stack([column(r, "nash_gap") for r in runs]))
        write_curves(ctx.out / "curves.csv", series, band="se")
        _figure(ctx, per_n, results, chosen)
        return {
            "curves": summary,
            "chosen": chosen,
            "iterations": iters,
            "lambdas": list(lambdas),
            "first": k10,
        }

    @staticmethod
    def headline(results: dict) -> list[tuple[str, str, str]]:
        cur, ch = results["curves"], results["chosen"]

        def s(N, name, reg=False, part="all"):
            key = ch[f"N={N} {name}"]["regularised" if reg else "plain"]
            return cur[key][part]

        def poa(N, name, reg=False, part="all"):
            return s(N, name, reg, part)["final_poa"]["mean"]

        def best_nn(N, part="all"):
            opts = {
                f"{n}{' + barrier' if r else ''}": poa(N, n, r, part)
                for n in ("NN-PG", "NN-Adam")
                for r in (0, 1)
            }
            return max(opts, key=opts.get)

        rows = []
        for part, label in (
            ("first10", f"first {results['first']}"),
            ("all", f"all {cur[next(iter(cur))]['all']['runs']}"),
        ):
            beats = []
            for N in NS:
                a, b = s(N, "NN-PG", part=part), s(N, "Softmax-PG", part=part)
                faster = (a["median_iterations_to_gap"] or np.inf) < (
                    b["median_iterations_to_gap"] or np.inf
                ) or (a["final_nash_gap"]["mean"] < b["final_nash_gap"]["mean"])
                beats.append(
                    f"N={N}: POA {fmt(a['final_poa']['mean'], 3)} vs {fmt(b['final_poa']['mean'], 3)}, "
                    f"gap {fmt(a['final_nash_gap']['mean'])} vs {fmt(b['final_nash_gap']['mean'])} "
                    f"({'yes' if faster and a['final_poa']['mean'] > b['final_poa']['mean'] else 'no'})"
                )
            rows.append(
                (
                    f"NN-PG beats Softmax-PG in convergence and POA ({label} inits)",
                    "yes, significantly",
                    "; ".join(beats),
                )
            )
            highest = []
            for N in NS:
                npg = poa(N, "Softmax-NPG", part=part)
                top = best_nn(N, part)
                nn = poa(N, top.split(" + ")[0], " + " in top, part)
                highest.append(
                    f"N={N}: NPG {fmt(npg, 3)} vs best NN ({top}) {fmt(nn, 3)} "
                    f"({'yes' if npg >= nn else 'no'})"
                )
            rows.append((f"Softmax-NPG ends with the highest POA ({label})", "yes", "; ".join(highest)))
            gains = []
            for N in NS:
                g_nn = max(poa(N, n, True, part) - poa(N, n, False, part) for n in ("NN-PG", "NN-Adam"))
                g_tab = poa(N, "Softmax-PG", True, part) - poa(N, "Softmax-PG", False, part)
                gains.append(f"N={N}: NN {fmt(g_nn, 2)} vs tabular {fmt(g_tab, 2)}")
            rows.append(
                (
                    f"the log barrier raises the POA more under NN, especially N = 5 ({label})",
                    "yes",
                    "; ".join(gains),
                )
            )
            rows.append(
                (
                    f"best NN variant by POA ({label})",
                    "NN-PG for small N, NN-Adam + barrier for N = 5",
                    "; ".join(f"N={N}: {best_nn(N, part)}" for N in NS),
                )
            )
        return rows

    @staticmethod
    def table(results: dict) -> tuple[list[str], list[list[str]]]:
        cols = [
            "N",
            "algorithm",
            "lambda",
            "runs",
            "converged (gap < 1e-3)",
            "median iterations",
            "final Nash gap (mean +- SE)",
            "final POA (mean +- SE)",
        ]
        rows = []
        for c in results["chosen"].values():
            for label in (c["plain"], c["regularised"]):
                if label is None:
                    continue
                s = results["curves"][label]
                for part in ("first10", "all"):
                    st = s[part]
                    rows.append(
                        [
                            str(s["n_agents"]),
                            s["algorithm"],
                            f"{s['lambda']:g}" if s["lambda"] else "-",
                            str(st["runs"]),
                            f"{st['converged']}/{st['runs']}",
                            fmt(st["median_iterations_to_gap"], 3),
                            f"{fmt(st['final_nash_gap']['mean'])} +- {fmt(st['final_nash_gap']['se'])}",
                            f"{fmt(st['final_poa']['mean'], 3)} +- {fmt(st['final_poa']['se'], 2)}",
                        ]
                    )
        return cols, rows


def _figure(ctx: Context, per_n: dict, results: dict, chosen: dict) -> None:
    pyplot = plt()
    if pyplot is None:
        return
    fig, axes = pyplot.subplots(2, len(NS), figsize=(5.2 * len(NS), 7.5), squeeze=False)
    for col, N in enumerate(NS):
        shown = []
        for name in ALGOS:
            c = chosen[f"N={N} {name}"]
            shown += [c["plain"]] + ([c["regularised"]] if c["regularised"] else [])
        for curve in per_n[N]:
            if curve.label in shown:
                _band(axes[0, col], results[curve.label], "poa", curve)
                _band(axes[1, col], results[curve.label], "nash_gap", curve)
        axes[0, col].set(title=f"Coordination game, N = {N}", xlabel="iteration", ylabel="POA")
        axes[1, col].set(xlabel="iteration", ylabel="Nash gap")
        axes[1, col].set_yscale("symlog", linthresh=1e-3)
        axes[0, col].legend(fontsize=7)
    runs = len(next(iter(results.values())))
    fig.suptitle(
        f"Paper 003 Fig. 2: neural softmax policies (dashed: best log barrier), mean +- SE over {runs} "
        "initialisations",
        fontsize=11,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    fig.savefig(ctx.out / "chen2022_coordination_nn.png", dpi=100)
    pyplot.close(fig)
