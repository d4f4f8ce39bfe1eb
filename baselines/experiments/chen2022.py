"""Paper 003 (Chen, Zhang, Doan 2022): PG, NPG and NPG-BR (and PG with the log barrier) on the
coordination game, N = 2, 3, 5, exact gradients, POA and Nash gap (Fig. 1), with the step-size
conventions side by side and a paired-seed comparison of NPG and NPG-BR.

**Step sizes.** Paper 003 writes NPG as ``theta += eta * A`` (Lemma 3.7) with eta = 0.1 (App. G),
and NPG-BR's inner step (eq. 5) as ``theta += A``, with no eta at all. Paper 001 writes NPG as
``theta += eta / (1 - gamma) * A``, which is our ``inpg``; with gamma = 0.95 that step is 20 times
larger at the same eta. The headline figure uses paper 003's ``eta * A`` with eta = 0.1 for NPG and
NPG-BR (our ``eta = 0.1 * (1 - gamma)``); the sensitivity figure adds NPG and NPG-BR at
``eta / (1 - gamma) * A`` (eta = 0.1) and NPG-BR at eq. (5)'s ``A``.

**Initialisations.** The paper averages 10 random N(0, 1) initialisations (Fig. 1), shared by the
algorithms; so do we (seed s gives the same initial logits to every algorithm), which makes the
per-seed difference NPG - NPG-BR a paired comparison.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

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

__all__ = ["Coordination"]

GAMMA = 0.95
ETA = 0.1
NS = (2, 3, 5)
BEST_K = {2: 50, 3: 5, 5: 5}  # paper 003 §5: the best K of its grid search, per N
GAP_TOL = 1e-3
#: Step-size conventions: name -> our eta for NPG-type updates (ours are theta += eta / (1 - gamma) * A)
CONVENTIONS = {
    "eta A": ETA * (1 - GAMMA),  # paper 003, Lemma 3.7, eta = 0.1
    "eta/(1-gamma) A": ETA,  # paper 001, Lemma 2.1, eta = 0.1
    "A (eq. 5)": 1 - GAMMA,  # paper 003 eq. (5): no step size
}
COLORS = {"PG": "C0", "NPG": "C1", "NPG-BR": "C2"}


def _curves(N: int, seeds: list[int], out: str, iters: int, k: int) -> list[Curve]:
    base = TrainConfig(
        env="mpg/Coordination-v0", env_kwargs={"n_agents": N}, estimator="exact", iters=iters,
        eval_every=1, eval_log=False, out=out,
    )  # fmt: skip

    def curve(label: str, name: str, algo: str, conv: str, style: str = "-", **kw) -> Curve:
        cfg = replace(base, algo=algo, algo_kwargs={"eta": ETA, **kw})
        meta = {"algorithm": name, "convention": conv, "n_agents": N}
        color = COLORS[name.replace(" + log barrier", "")]  # the barrier variant: PG's colour, dashed
        return Curve(f"N={N} {label}", [replace(cfg, seed=s) for s in seeds], color, style, meta)

    npg, br = "NPG", "NPG-BR"
    return [
        curve("PG", "PG", "ipg", "eta grad"),
        curve("NPG (eta A)", npg, "inpg", "eta A", eta=CONVENTIONS["eta A"]),
        curve(f"NPG-BR (K={k}, eta A)", br, "npg_br", "eta A", eta=CONVENTIONS["eta A"], inner_steps=k),
        curve("PG + log barrier (lambda=0.1)", "PG + log barrier", "ipg", "eta grad", "--", log_barrier=0.1),
        curve(
            "NPG (eta/(1-gamma) A)", npg, "inpg", "eta/(1-gamma) A", ":", eta=CONVENTIONS["eta/(1-gamma) A"]
        ),
        curve(
            f"NPG-BR (K={k}, eta/(1-gamma) A)",
            br,
            "npg_br",
            "eta/(1-gamma) A",
            ":",
            eta=CONVENTIONS["eta/(1-gamma) A"],
            inner_steps=k,
        ),
        curve(
            f"NPG-BR (K={k}, A as eq. 5)",
            br,
            "npg_br",
            "A (eq. 5)",
            "-.",
            eta=CONVENTIONS["A (eq. 5)"],
            inner_steps=k,
        ),
    ]


def _se(Y: np.ndarray) -> np.ndarray:
    return Y.std(axis=0) / np.sqrt(len(Y))


def _paired(a: dict, b: dict) -> dict:
    """Per-seed NPG - NPG-BR: iterations to gap < 1e-3 (seeds where both get there) and final POA."""
    ia, ib = a["iterations_to_gap"], b["iterations_to_gap"]
    both = [(x, y) for x, y in zip(ia, ib) if x is not None and y is not None]
    d_it = [x - y for x, y in both]
    d_poa = np.array(a["per_seed_poa"]) - np.array(b["per_seed_poa"])
    return {
        "iterations_difference": d_it,
        "npg_faster": int(sum(d < 0 for d in d_it)),
        "npg_br_faster": int(sum(d > 0 for d in d_it)),
        "only_npg_converged": int(sum(x is not None and y is None for x, y in zip(ia, ib))),
        "only_npg_br_converged": int(sum(x is None and y is not None for x, y in zip(ia, ib))),
        "poa_difference": {
            "mean": float(d_poa.mean()),
            "se": float(d_poa.std() / np.sqrt(len(d_poa))),
            "npg_higher": int((d_poa > 0).sum()),
            "npg_br_higher": int((d_poa < 0).sum()),
        },
        "runs": len(d_poa),
    }


def _median(xs: list[int | None]) -> float | None:
    """Median over all runs, a run that never converges counting as +infinity (None if > half)."""
    vals = sorted(np.inf if x is None else x for x in xs)
    m = float(np.median(vals))
    return None if not np.isfinite(m) else m


class Coordination:
    """``chen2022-coordination``: paper 003 Fig. 1."""

    NAME = "chen2022-coordination"
    TITLE = "Paper 003, coordination game (Fig. 1)"
    PAPER = "Chen, Zhang, Doan 2022, §5.1"
    DESCRIPTION = (
        "Exact gradients, gamma = 0.95, uniform mu, N(0, 1) initial logits shared by all algorithms, "
        "eta = 0.1 "
        "in paper 003's convention (NPG and NPG-BR: `theta += 0.1 A`), K per N as the paper's best "
        "(50 / 5 / 5), log barrier lambda = 0.1 (the paper grid-searched lambda per algorithm). Paper 003 "
        "averages 10 initialisations. Eq. (5), NPG-BR's inner step, has no step size (`theta += A`); paper "
        "001's NPG step is `eta / (1 - gamma) A`, 20 times larger here: both are run too. Iterations to "
        "equilibrium: first iteration from which the exact Nash gap stays below 1e-3 (medians count runs "
        "that "
        "never get there as infinite). NPG-BR spends N(K+1)+1 estimates per outer iteration, NPG and PG one."
    )

    @staticmethod
    def run(ctx: Context) -> dict:
        seeds = ctx.seed_list(10, 3)
        iters = 400 if ctx.full else 150
        out = str(ctx.out / "runs")
        per_n = {N: _curves(N, seeds, out, iters, BEST_K[N] if ctx.full else min(BEST_K[N], 5)) for N in NS}
        curves = [c for cs in per_n.values() for c in cs]
        results = run_grid(Coordination.NAME, curves, ctx)
        summary: dict[str, dict] = {}
        series_poa, series_gap = {}, {}
        for c in curves:
            runs = results[c.label]
            its = iterations(runs[0])
            poa = stack([column(r, "poa") for r in runs])
            gap = np.vectorize(gap_value)(stack([column(r, "nash_gap") for r in runs]))
            series_poa[f"{c.label} POA"] = (its, poa)
            series_gap[f"{c.label} Nash gap"] = (its, gap)
            to_gap = [first_below(g, its, GAP_TOL) for g in gap]
            k = c.configs[0].algo_kwargs.get("inner_steps")
            N = c.meta["n_agents"]
            summary[c.label] = {
                **c.meta,
                "label": c.label,
                "runs": len(runs),
                "inner_steps": k,
                "estimates_per_iteration": N * (k + 1) + 1 if k else 1,
                "eta": c.configs[0].algo_kwargs["eta"],
                "final_poa": {"mean": float(poa[:, -1].mean()), "se": float(_se(poa)[-1])},
                "final_nash_gap": {"mean": float(gap[:, -1].mean()), "se": float(_se(gap)[-1])},
                "per_seed_poa": [float(x) for x in poa[:, -1]],
                "iterations_to_gap": to_gap,
                "converged": sum(x is not None for x in to_gap),
                "median_iterations_to_gap": _median(to_gap),
            }
        paired = {}
        for N in NS:
            for conv in ("eta A", "eta/(1-gamma) A"):
                npg = next(
                    s
                    for s in summary.values()
                    if s["n_agents"] == N and s["algorithm"] == "NPG" and s["convention"] == conv
                )
                br = next(
                    s
                    for s in summary.values()
                    if s["n_agents"] == N and s["algorithm"] == "NPG-BR" and s["convention"] == conv
                )
                paired[f"N={N} {conv}"] = _paired(npg, br)
        write_curves(ctx.out / "curves.csv", {**series_poa, **series_gap}, band="se")
        _figures(ctx, per_n, results, summary, paired)
        return {"curves": summary, "paired": paired, "gap_tolerance": GAP_TOL, "iterations": iters}

    @staticmethod
    def headline(results: dict) -> list[tuple[str, str, str]]:
        cur = results["curves"]

        def pick(alg, conv, N):
            return next(
                s
                for s in cur.values()
                if s["algorithm"] == alg and s["convention"] == conv and s["n_agents"] == N
            )

        def medians(alg, conv):
            return " / ".join(fmt(pick(alg, conv, N)["median_iterations_to_gap"], 3) for N in NS)

        def conv_count(alg, conv):
            return " / ".join(f"{pick(alg, conv, N)['converged']}" for N in NS)

        def poas(alg, conv):
            return " / ".join(fmt(pick(alg, conv, N)["final_poa"]["mean"], 3) for N in NS)

        runs = pick("PG", "eta grad", 2)["runs"]
        its = results["iterations"]
        ks = " / ".join(str(pick("NPG-BR", "eta A", N)["inner_steps"]) for N in NS)
        pg_gap = " / ".join(fmt(pick("PG", "eta grad", N)["final_nash_gap"]["mean"]) for N in NS)

        def order(npg_conv, br_conv):  # algorithms by median iterations to gap < 1e-3, per N
            per_n = []
            for N in NS:
                algs = [("NPG", npg_conv), ("NPG-BR", br_conv), ("PG", "eta grad")]
                med = {a: pick(a, c, N)["median_iterations_to_gap"] for a, c in algs}
                key = {a: np.inf if m is None else m for a, m in med.items()}
                ranked = sorted(key, key=key.get)
                text = ranked[0]
                for prev, a in zip(ranked, ranked[1:]):
                    text += (" = " if key[a] == key[prev] else " < ") + a
                per_n.append(text)
            return " / ".join(per_n)

        p = results["paired"]
        pairs = [(N, c) for N in NS for c in ("eta A", "eta/(1-gamma) A")]
        ties = sum(
            abs(p[f"N={N} {c}"]["poa_difference"]["mean"]) <= 2 * p[f"N={N} {c}"]["poa_difference"]["se"]
            for N, c in pairs
        )
        d = " / ".join(
            f"{fmt(p[f'N={N} eta A']['poa_difference']['mean'], 2)} +- "
            f"{fmt(p[f'N={N} eta A']['poa_difference']['se'], 2)}"
            for N in NS
        )
        se = " to ".join(
            fmt(f(x["final_poa"]["se"] for x in cur.values() if x["convention"] != "A (eq. 5)"), 2)
            for f in (min, max)
        )
        barrier = " / ".join(fmt(pick("PG + log barrier", "eta grad", N)["final_poa"]["mean"], 3) for N in NS)
        return [
            (
                f"coordination N = 2 / 3 / 5, exact, eta = 0.1 as paper 003 writes it (eta A), {its} "
                f"iterations, {runs} initialisations (paper: 10)",
                "NPG converges fastest, NPG-BR second, PG slowest",
                f"median iterations to Nash gap < 1e-3: NPG-BR (K = {ks}) {medians('NPG-BR', 'eta A')}, "
                f"NPG {medians('NPG', 'eta A')}, PG {medians('PG', 'eta grad')} (final gap {pg_gap}); "
                f"converged NPG-BR {conv_count('NPG-BR', 'eta A')}, NPG {conv_count('NPG', 'eta A')}, "
                f"PG {conv_count('PG', 'eta grad')} of {runs}. Order per outer iteration: "
                f"{order('eta A', 'eta A')}; "
                "NPG-BR spends N(K+1)+1 estimates per iteration",
            ),
            (
                "same, NPG and NPG-BR at eta/(1-gamma) A (paper 001's form: 20x the step)",
                "as above",
                f"median iterations NPG {medians('NPG', 'eta/(1-gamma) A')}, NPG-BR "
                f"{medians('NPG-BR', 'eta/(1-gamma) A')}. Order, NPG at this step against NPG-BR at eta A: "
                f"{order('eta/(1-gamma) A', 'eta A')}; both at this step: "
                f"{order('eta/(1-gamma) A', 'eta/(1-gamma) A')}",
            ),
            (
                "final POA, N = 2 / 3 / 5",
                "NPG highest, NPG-BR second, PG lowest",
                f"NPG {poas('NPG', 'eta A')}, NPG-BR {poas('NPG-BR', 'eta A')}, PG {poas('PG', 'eta grad')} "
                f"(SE {se}). Paired per seed, NPG - NPG-BR: {d} (eta A); within 2 SE of 0 in {ties} of "
                f"{len(pairs)} (N, step size) pairs. PG + log barrier (lambda = 0.1): {barrier}",
            ),
        ]

    @staticmethod
    def table(results: dict) -> tuple[list[str], list[list[str]]]:
        cols = [
            "N",
            "algorithm",
            "step",
            "estimates / iteration",
            "converged (gap < 1e-3)",
            "median iterations",
            "final Nash gap (mean +- SE)",
            "final POA (mean +- SE)",
        ]
        rows = []
        for s in results["curves"].values():
            step = {
                "eta grad": "0.1 grad",
                "eta A": "0.1 A",
                "eta/(1-gamma) A": "2 A (0.1/(1-gamma))",
                "A (eq. 5)": "A",
            }[s["convention"]]
            rows.append(
                [
                    str(s["n_agents"]),
                    s["algorithm"] + (f" (K={s['inner_steps']})" if s["inner_steps"] else ""),
                    step,
                    str(s["estimates_per_iteration"]),
                    f"{s['converged']}/{s['runs']}",
                    fmt(s["median_iterations_to_gap"], 3),
                    f"{fmt(s['final_nash_gap']['mean'])} +- {fmt(s['final_nash_gap']['se'])}",
                    f"{fmt(s['final_poa']['mean'], 3)} +- {fmt(s['final_poa']['se'], 2)}",
                ]
            )
        for key, p in results["paired"].items():
            N, conv = key.split(" ", 1)
            rows.append(
                [
                    N[2:],
                    "paired NPG - NPG-BR",
                    conv.replace("eta/(1-gamma) A", "2 A").replace("eta A", "0.1 A"),
                    "",
                    f"NPG faster on {p['npg_faster']}, NPG-BR on {p['npg_br_faster']} seeds"
                    + (f"; only NPG converged {p['only_npg_converged']}" if p["only_npg_converged"] else "")
                    + (
                        f"; only NPG-BR converged {p['only_npg_br_converged']}"
                        if p["only_npg_br_converged"]
                        else ""
                    ),
                    "",
                    "",
                    f"{fmt(p['poa_difference']['mean'], 2)} +- {fmt(p['poa_difference']['se'], 2)} "
                    "(NPG higher on "
                    f"{p['poa_difference']['npg_higher']}/{p['runs']})",
                ]
            )
        return cols, rows


def _figures(ctx: Context, per_n: dict, results: dict, summary: dict, paired: dict) -> None:
    pyplot = plt()
    if pyplot is None:
        return
    # Fig. 1 as in the paper: POA (top) and Nash gap (bottom), mean +- standard error
    fig, axes = pyplot.subplots(2, len(NS), figsize=(5.2 * len(NS), 7.5), squeeze=False)
    for col, N in enumerate(NS):
        for c in per_n[N][:4]:
            _band(axes[0, col], results[c.label], "poa", c)
            _band(axes[1, col], results[c.label], "nash_gap", c)
        axes[0, col].set(title=f"Coordination game, N = {N}", xlabel="iteration", ylabel="POA")
        axes[1, col].set(xlabel="iteration", ylabel="Nash gap", yscale="symlog")
        axes[1, col].set_yscale("symlog", linthresh=1e-3)
        axes[0, col].legend(fontsize=7)
    fig.suptitle(
        "Paper 003 Fig. 1 (eta = 0.1 in the paper's eta A form): mean +- standard error over "
        f"{summary[per_n[NS[0]][0].label]['runs']} initialisations",
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(ctx.out / "chen2022_coordination.png", dpi=100)
    pyplot.close(fig)
    # step-size conventions and the paired comparison
    fig, axes = pyplot.subplots(2, len(NS), figsize=(5.2 * len(NS), 7.5), squeeze=False)
    for col, N in enumerate(NS):
        for c in per_n[N]:
            if c.meta["algorithm"] in ("NPG", "NPG-BR"):
                _band(axes[0, col], results[c.label], "nash_gap", c)
        axes[0, col].set(title=f"N = {N}: NPG and NPG-BR by step size", xlabel="iteration", ylabel="Nash gap")
        axes[0, col].set_yscale("symlog", linthresh=1e-3)
        axes[0, col].legend(fontsize=7)
        ax = axes[1, col]
        for j, conv in enumerate(("eta A", "eta/(1-gamma) A")):
            npg = next(c for c in per_n[N] if c.meta["algorithm"] == "NPG" and c.meta["convention"] == conv)
            br = next(c for c in per_n[N] if c.meta["algorithm"] == "NPG-BR" and c.meta["convention"] == conv)
            d = np.array(summary[npg.label]["per_seed_poa"]) - np.array(summary[br.label]["per_seed_poa"])
            ax.scatter(np.full(len(d), j) + np.linspace(-0.15, 0.15, len(d)), d, color="C1", s=18)
            ax.errorbar(j + 0.3, d.mean(), yerr=d.std() / np.sqrt(len(d)), fmt="s", color="k", capsize=4)
        ax.axhline(0, color="0.5", lw=0.8)
        ax.set_xticks([0, 1], ["0.1 A", "0.1/(1-gamma) A"])
        ax.set(title=f"N = {N}: final POA, NPG - NPG-BR per seed", ylabel="POA difference (mean +- SE)")
    fig.tight_layout()
    fig.savefig(ctx.out / "chen2022_step_sizes.png", dpi=100)
    pyplot.close(fig)


def _band(ax, runs, key: str, c: Curve) -> None:
    its = iterations(runs[0])
    Y = stack([column(r, key) for r in runs])
    m, s = Y.mean(axis=0), _se(Y)
    ax.plot(its, m, c.style, color=c.color, label=c.label.split(" ", 1)[1])
    ax.fill_between(its, m - s, m + s, color=c.color, alpha=0.15)
