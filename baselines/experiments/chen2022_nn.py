"""Paper 003 (Chen, Zhang, Doan 2022) Fig. 2: neural softmax policies on the coordination game.

NN-PG (SGD) and NN-Adam, each without and with the log barrier, beside Softmax-PG (without and with
the barrier) and Softmax-NPG of Fig. 1, N = 2, 3, 5, exact gradients (back-propagated through each
network's table), 400 iterations, learning rate 0.1 (App. G), paper 003's network (one-hot global
state, 2^N-FC(2^N)-FC(2^N)-Linear(2)-softmax, ReLU: the paper does not name the activation).

**Initialisation.** Paper 003 §5: "The algorithms, both the tabular softmax and the neural network
parameterizations, share the same initial policy parameters, which are sampled from the normal
distribution of mean 0 and standard deviation 1." Read literally, every network parameter is
N(0, 1) (``init="normal"``; a network and a table cannot share parameters, so "share" cannot be
literal). With N(0, 1) weights each layer multiplies the logits' scale by about sqrt(fan_in / 2):
at N = 5 most rows of the initial policy are near-deterministic (largest probability > 0.99) and
their gradients vanish. The paper's code is PyTorch, whose default initialisation of ``nn.Linear``
(U(+-1/sqrt(fan_in))) starts near the uniform policy. Both are run (``init="torch"``); the tabular
curves are the same under both.

**Seeds and lambda.** Paper 003's Fig. 2 averages 20 initialisations (its caption); we report 30
(seeds 0-29). The barrier weight lambda is chosen from the paper's grid {0.01, 0.1, 1, 10, 100} per
algorithm, N and initialisation on seeds 100-119 (:func:`~baselines.experiments.chen2022.select_lambda`)
and reported on seeds 0-29; the paper kept the best POA of its own runs.

**Verdicts** come from paired tests over the 30 seeds (:mod:`.stats`), never from two means.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from baselines.experiments.chen2022 import (
    GAMMA,
    GAP_TOL,
    LAMBDAS,
    NS,
    POA_SCALE,
    REPORT_SEEDS,
    SELECT_SEEDS,
    SELECT_SLACK,
    _band,
    aggregate,
    compare,
    fmt_seeds,
    run_records,
    select_lambda,
    selection_context,
    selection_seeds,
)
from baselines.experiments.common import (
    Context,
    Curve,
    fmt,
    plt,
    run_grid,
    write_run_curves,
)
from baselines.experiments.stats import fmt_interval, fraction, paired, paired_verdict
from baselines.train import TrainConfig

__all__ = ["CoordinationNN"]

LR = 0.1
COLORS = {"Softmax-PG": "C0", "Softmax-NPG": "C1", "NN-PG": "C3", "NN-Adam": "C4"}
ALGOS = {  # name -> (algo, algo_kwargs without the barrier)
    "Softmax-PG": ("ipg", {"eta": LR}),
    "Softmax-NPG": ("inpg", {"eta": LR * (1 - GAMMA)}),  # paper 003's theta += 0.1 A
    "NN-PG": ("nn_pg", {"lr": LR, "optimizer": "sgd"}),
    "NN-Adam": ("nn_pg", {"lr": LR, "optimizer": "adam"}),
}
NN = ("NN-PG", "NN-Adam")
BARRIER = ("Softmax-PG", "NN-PG", "NN-Adam")
#: initialisation -> its name in labels
INITS = {"normal": "N(0,1) init", "torch": "PyTorch init"}
METRICS = {"final_poa": "final POA", "final_nash_gap": "final Nash gap", "iterations": "iterations"}
#: a run "reaches the social optimum" when its final POA exceeds this
OPTIMUM = 0.999


def _name(name: str, init: str, lam: float = 0.0) -> str:
    """``"NN-PG [N(0,1) init] + barrier 1"``; tabular algorithms carry no initialisation."""
    return name + (f" [{INITS[init]}]" if name in NN else "") + (f" + barrier {lam:g}" if lam else "")


def _curve(N: int, name: str, init: str, lam: float, seeds: list[int], base: TrainConfig, role: str) -> Curve:
    algo, kw = ALGOS[name]
    cfg = replace(
        base,
        algo=algo,
        init=init,
        algo_kwargs={**kw, **({"log_barrier": lam} if lam else {})},
    )
    meta = {"algorithm": name, "init": init, "lambda": float(lam), "n_agents": N, "role": role}
    label = f"N={N} {_name(name, init, lam)}" + (" (selection seeds)" if role == "select" else "")
    return Curve(label, [replace(cfg, seed=s) for s in seeds], COLORS[name], "--" if lam else "-", meta)


def _base(N: int, iters: int, out: str) -> TrainConfig:
    return TrainConfig(
        env="mpg/Coordination-v0", env_kwargs={"n_agents": N}, estimator="exact", iters=iters,
        eval_every=4, eval_log=True, out=out,
    )  # fmt: skip


def _variants() -> list[tuple[str, str]]:
    """(algorithm, initialisation) pairs that have a barrier: Softmax-PG once, each NN under both."""
    return [("Softmax-PG", "normal")] + [(n, i) for i in INITS for n in NN]


def _selection_curves(N: int, seeds: list[int], out: str, iters: int, lambdas) -> list[Curve]:
    base = _base(N, iters, out)
    return [_curve(N, n, i, lam, seeds, base, "select") for n, i in _variants() for lam in (0.0, *lambdas)]


def _report_curves(N: int, seeds: list[int], out: str, iters: int, chosen: dict) -> list[Curve]:
    base = _base(N, iters, out)
    curves = [_curve(N, "Softmax-NPG", "normal", 0.0, seeds, base, "report")]
    for n, i in _variants():
        curves += [
            _curve(N, n, i, 0.0, seeds, base, "report"),
            _curve(N, n, i, chosen[N, n, i], seeds, base, "report"),
        ]
    return curves


def _label(recs: dict, N: int, name: str, init: str, barrier: bool, role: str = "report") -> str:
    """The one curve of an algorithm (with or without the barrier) at N under an initialisation."""
    hits = [
        k
        for k, r in recs.items()
        if (m := r["meta"])["n_agents"] == N
        and m["algorithm"] == name
        and m["role"] == role
        and (m["init"] == init or name not in NN)
        and bool(m["lambda"]) == barrier
    ]
    if len(hits) != 1:
        raise ValueError(f"expected one {role} curve {name} [{init}] barrier={barrier} at N={N}, got {hits}")
    return hits[0]


def _selection_inputs(recs: dict, N: int, name: str, init: str) -> tuple[dict, dict]:
    sel = [
        r
        for r in recs.values()
        if (m := r["meta"])["role"] == "select"
        and m["n_agents"] == N
        and m["algorithm"] == name
        and (m["init"] == init or name not in NN)
    ]
    plain = [r for r in sel if not r["meta"]["lambda"]]
    if len(plain) != 1:
        raise ValueError(f"N={N} {name} [{init}]: expected one selection curve without the barrier")
    return plain[0], {r["meta"]["lambda"]: r for r in sel if r["meta"]["lambda"]}


def _gain_difference(recs: dict, nn: tuple[str, str], tab: tuple[str, str]) -> dict:
    """Paired over seeds: (NN + barrier - NN) - (Softmax-PG + barrier - Softmax-PG), final POA."""
    (nb, n), (tb, t) = nn, tab
    g_nn = np.array(recs[nb]["final_poa"]) - np.array(recs[n]["final_poa"])
    g_tab = np.array(recs[tb]["final_poa"]) - np.array(recs[t]["final_poa"])
    test = paired(g_nn, g_tab)
    return {"a": nb, "b": tb, "metric": "barrier gain in final POA", "test": test, "verdict": ""}


def _compare_init(recs: dict, N: int, init: str, horizon: int, tests: dict, verdicts: dict) -> None:
    """The paired tests and verdicts of paper 003 §5.2's claims at N under one initialisation of the
    networks (added to ``tests`` and ``verdicts``)."""
    lab = {(n, b): _label(recs, N, n, init, b) for n in BARRIER for b in (False, True)}
    lab["Softmax-NPG", False] = _label(recs, N, "Softmax-NPG", init, False)
    names = {k: k[0] + (" + barrier" if k[1] else "") for k in lab}  # the tag names the init
    tag = f"N={N} [{INITS[init]}]"

    def cmp(a: tuple, b: tuple, metric: str, key: str | None = None) -> dict:
        t = compare(recs, lab[a], lab[b], metric, horizon, names[a], names[b])
        tests[f"{tag} {key or names[a] + ' vs ' + names[b]}: {METRICS[metric]}"] = t
        return t

    # NN-PG against Softmax-PG: POA and speed
    nn_poa = cmp(("NN-PG", False), ("Softmax-PG", False), "final_poa")
    nn_its = cmp(("NN-PG", False), ("Softmax-PG", False), "iterations")
    nn = names["NN-PG", False]
    better = nn_poa["verdict"] == f"{nn} higher" and nn_its["verdict"] == f"{nn} faster"
    verdicts[f"{tag} NN-PG beats Softmax-PG"] = (
        f"{'yes' if better else 'no'} (POA: {nn_poa['verdict']}; speed: {nn_its['verdict']})"
    )
    # Softmax-NPG against every other curve of the figure
    res = {k: cmp(("Softmax-NPG", False), k, "final_poa") for k in lab if k != ("Softmax-NPG", False)}
    above = [names[k] for k, t in res.items() if t["verdict"].endswith(" higher") and t["test"]["high"] < 0]
    tied = [names[k] for k, t in res.items() if not t["verdict"].endswith(" higher")]
    parts = ([f"higher: {', '.join(above)}"] if above else []) + (
        [f"not significantly lower: {', '.join(tied)}"] if tied else []
    )
    verdicts[f"{tag} Softmax-NPG highest"] = "yes" if not parts else "no: " + "; ".join(parts)
    # the barrier's gain, per algorithm, and each network's gain against the tabular one
    for n in BARRIER:
        cmp((n, True), (n, False), "final_poa", f"{names[n, False]} barrier gain")
        cmp((n, True), (n, False), "final_nash_gap", f"{names[n, False]} barrier gain")
    for n in NN:
        g = _gain_difference(
            recs, (lab[n, True], lab[n, False]), (lab["Softmax-PG", True], lab["Softmax-PG", False])
        )
        verdict = paired_verdict(g["test"], names[n, False], "Softmax-PG", POA_SCALE)
        g["verdict"] = verdict.replace(" higher", " gains more")
        tests[f"{tag} {names[n, False]} vs Softmax-PG: barrier gain in final POA"] = g
    # the best NN variant: named only when it beats the runner-up
    variants = [(n, b) for n in NN for b in (False, True)]
    mean = {k: float(np.mean(recs[lab[k]]["final_poa"])) for k in variants}
    ranked = sorted(variants, key=lambda k: -mean[k])
    top = ranked[0]
    vs = {k: cmp(top, k, "final_poa", f"best NN ({names[top]}) vs {names[k]}") for k in ranked[1:]}
    tie = [names[k] for k in ranked[1:] if vs[k]["verdict"] != f"{names[top]} higher"]
    verdicts[f"{tag} best NN variant"] = (
        names[top] if not tie else f"tie: {names[top]}, {', '.join(tie)} (highest mean: {names[top]})"
    )


class CoordinationNN:
    """``chen2022-coordination-nn``: paper 003 Fig. 2."""

    NAME = "chen2022-coordination-nn"
    TITLE = "Paper 003, coordination game, neural policies (Fig. 2)"
    PAPER = "Chen, Zhang, Doan 2022, §5.2"
    DESCRIPTION = (
        "NN-PG (SGD) and NN-Adam with and without the log barrier beside Softmax-PG (with and without) and "
        "Softmax-NPG, exact gradients, N = 2, 3, 5, 400 iterations, learning rate 0.1 (Softmax-NPG: "
        "`theta += 0.1 A`), paper 003's network (one-hot state, two hidden layers of width 2^N, ReLU). "
        "**Two initialisations** of the networks: every parameter N(0, 1), as the paper's text reads "
        '("share the same initial policy parameters, which are sampled from the normal distribution of '
        "mean 0 and standard deviation 1\"), and PyTorch's default for `nn.Linear` (U(+-1/sqrt(fan_in))), "
        "the paper's framework; tabular logits are N(0, 1) under both. Saturated: the share of the initial "
        "policy's (agent, state) rows whose largest probability exceeds 0.99. Paper 003's Fig. 2 averages 20 "
        "initialisations; we report 30 (seeds 0-29). Lambda is chosen from {0.01, 0.1, 1, 10, 100} per "
        "algorithm, N and initialisation on seeds 100-119 -- the highest mean final POA among the lambdas "
        f"whose mean final Nash gap is at most the algorithm's own without the barrier + {SELECT_SLACK:g}, "
        "i.e. whose runs end no further from an equilibrium (else the smallest gap) -- and "
        "reported on seeds 0-29 (the paper kept the best POA of its own runs, whatever their Nash gap). "
        "Converged: exact Nash gap below 1e-3 from some evaluated iteration on (Wilson 95% intervals). "
        "Comparisons are paired over the 30 seeds: mean difference [95% t interval]; speed compares "
        "iterations to gap < 1e-3, a run that never gets there counted as 400; verdict words come from "
        f"the interval (a POA difference within +-{POA_SCALE:g} is no difference that matters). Standard "
        "errors use ddof = 1."
    )

    @staticmethod
    def run(ctx: Context) -> dict:
        import torch

        torch.set_num_threads(1)
        seeds = ctx.seed_list(REPORT_SEEDS, 2)
        sel_seeds = selection_seeds(seeds, SELECT_SEEDS if ctx.full else 1)
        iters = 400 if ctx.full else 100  # the short version: a smoke of the full protocol
        horizon = min(iters, ctx.max_iters) if ctx.max_iters else iters
        lambdas = LAMBDAS if ctx.full else (0.1,)
        out = str(ctx.out / "runs")
        sel = [c for N in NS for c in _selection_curves(N, sel_seeds, out, iters, lambdas)]
        got = run_grid(CoordinationNN.NAME, sel, selection_context(ctx))
        per_run = {c.label: run_records(c, got[c.label], saturation=True) for c in sel}
        chosen = {
            (N, n, i): select_lambda(*_selection_inputs(per_run, N, n, i))["lambda"]
            for N in NS
            for n, i in _variants()
        }
        per_n = {N: _report_curves(N, seeds, out, iters, chosen) for N in NS}
        rep = [c for cs in per_n.values() for c in cs]
        results = run_grid(CoordinationNN.NAME, rep, ctx)
        per_run.update({c.label: run_records(c, results[c.label], saturation=True) for c in rep})
        summary = CoordinationNN.rederive(
            {"iterations": horizon, "lambdas": list(lambdas), "per_run": per_run}
        )
        write_run_curves(ctx.out / "curves.csv", rep, results)
        _figures(ctx, per_n, results, summary)
        return summary

    @staticmethod
    def rederive(results: dict) -> dict:
        """Every aggregate of a summary, recomputed from its per-run records (``results["per_run"]``).

        Returns:
            ``{"iterations", "gap_tolerance", "lambdas", "per_run", "curves", "selection", "paired",
            "verdicts"}``.

        Raises:
            ValueError: A reported barrier curve's lambda is not the one its selection runs choose.
        """
        recs, horizon = results["per_run"], results["iterations"]
        curves = {label: {**r["meta"], "label": label, **aggregate(r)} for label, r in recs.items()}
        for label, r in recs.items():
            curves[label]["at_optimum"] = fraction([x > OPTIMUM for x in r["final_poa"]])
        selection, tests, verdicts = {}, {}, {}
        for N in NS:
            for n, i in _variants():
                s = select_lambda(*_selection_inputs(recs, N, n, i))
                rep = recs[_label(recs, N, n, i, True)]["meta"]["lambda"]
                if rep != s["lambda"]:
                    raise ValueError(
                        f"N={N} {_name(n, i)}: the reported barrier runs use lambda={rep:g}, the selection "
                        f"seeds choose {s['lambda']:g}"
                    )
                selection[f"N={N} {_name(n, i)}"] = s
            for init in INITS:
                _compare_init(recs, N, init, horizon, tests, verdicts)
            # the initialisation: PyTorch's default against N(0, 1), same seeds
            for n in NN:
                a, b = _label(recs, N, n, "torch", False), _label(recs, N, n, "normal", False)
                t = compare(recs, a, b, "final_poa", horizon, _name(n, "torch"), _name(n, "normal"))
                tests[f"N={N} {n} PyTorch init vs N(0,1) init: final POA"] = t
        return {
            "iterations": horizon,
            "gap_tolerance": GAP_TOL,
            "lambdas": list(results["lambdas"]),
            "per_run": recs,
            "curves": curves,
            "selection": selection,
            "paired": tests,
            "verdicts": verdicts,
        }

    @staticmethod
    def headline(results: dict) -> list[tuple[str, str, str]]:
        cur, p, v = results["curves"], results["paired"], results["verdicts"]
        report = [c for c in cur.values() if c["role"] == "report"]
        runs = report[0]["runs"]

        def pick(N, name, init, barrier=False):
            return next(
                c
                for c in report
                if c["n_agents"] == N
                and c["algorithm"] == name
                and (c["init"] == init or name not in NN)
                and bool(c["lambda"]) == barrier
            )

        rows = []
        for init, tag in INITS.items():

            def t(N, key, digits=2, tag=tag):
                return fmt_interval(p[f"N={N} [{tag}] {key}"]["test"], digits)

            nnpg, spg = "NN-PG", "Softmax-PG"
            beats = "; ".join(
                f"N={N}: POA {t(N, f'{nnpg} vs {spg}: final POA')}, iterations "
                f"{t(N, f'{nnpg} vs {spg}: iterations', 3)} -> {v[f'N={N} [{tag}] NN-PG beats Softmax-PG']}"
                for N in NS
            )
            rows.append(
                (
                    f"NN-PG beats Softmax-PG in convergence and POA ({tag}, {runs} seeds)",
                    "yes, significantly",
                    beats,
                )
            )
            npg = "; ".join(f"N={N}: {v[f'N={N} [{tag}] Softmax-NPG highest']}" for N in NS)
            rows.append((f"Softmax-NPG ends with the highest POA ({tag})", "yes", npg))
            gains = []
            for N in NS:
                lam = {
                    n: results["selection"][f"N={N} {_name(n, init if n in NN else 'normal')}"]["lambda"]
                    for n in BARRIER
                }
                g = ", ".join(
                    f"{n} (lambda {lam[n]:g}) {t(N, f'{n} barrier gain: final POA')}" for n in BARRIER
                )
                more = ", ".join(
                    p[f"N={N} [{tag}] {n} vs Softmax-PG: barrier gain in final POA"]["verdict"] for n in NN
                )
                gains.append(f"N={N}: {g}; {more}")
            rows.append(
                (
                    f"the log barrier raises the POA more under NN, especially N = 5 ({tag}; lambda "
                    f"chosen on {fmt_seeds(results['selection']['N=2 Softmax-PG']['seeds'])})",
                    "yes",
                    "; ".join(gains),
                )
            )
            rows.append(
                (
                    f"best NN variant by POA ({tag})",
                    "NN-PG for small N, NN-Adam + barrier for N = 5",
                    "; ".join(f"N={N}: {v[f'N={N} [{tag}] best NN variant']}" for N in NS),
                )
            )
        sat = "; ".join(
            f"N={N}: {fmt(100 * pick(N, 'NN-PG', 'normal')['initial_saturated']['mean'], 2)}% vs "
            f"{fmt(100 * pick(N, 'NN-PG', 'torch')['initial_saturated']['mean'], 2)}%"
            for N in NS
        )
        poa = "; ".join(
            f"N={N}: {fmt_interval(p[f'N={N} NN-PG PyTorch init vs N(0,1) init: final POA']['test'], 2)}"
            for N in NS
        )
        opt = pick(5, "NN-PG", "torch")["at_optimum"]
        rows.append(
            (
                "initialisation of the networks: every parameter N(0, 1) vs PyTorch's default",
                '"initial policy parameters ... sampled from" N(0, 1) (§5)',
                f"initial rows saturated (largest probability > 0.99), N(0,1) vs PyTorch: {sat}. NN-PG final "
                f"POA, PyTorch minus N(0,1): {poa}; NN-PG with PyTorch's init at POA > {OPTIMUM} for N = 5: "
                f"{opt['k']}/{opt['n']} ({100 * opt['low']:.0f}-{100 * opt['high']:.0f}%)",
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
            "saturated at start",
            "converged (gap < 1e-3, 95% CI)",
            "median iterations",
            "final Nash gap (mean +- SE)",
            "final POA (mean +- SE)",
        ]
        rows = []
        for s in results["curves"].values():
            if s["role"] != "report":
                continue
            c = s["converged"]
            rows.append(
                [
                    str(s["n_agents"]),
                    _name(s["algorithm"], s["init"]),
                    f"{s['lambda']:g}" if s["lambda"] else "-",
                    str(s["runs"]),
                    f"{fmt(100 * s['initial_saturated']['mean'], 2)}%",
                    f"{c['k']}/{c['n']} ({100 * c['low']:.0f}-{100 * c['high']:.0f}%)",
                    fmt(s["median_iterations_to_gap"], 3),
                    f"{fmt(s['final_nash_gap']['mean'])} +- {fmt(s['final_nash_gap']['se'])}",
                    f"{fmt(s['final_poa']['mean'], 3)} +- {fmt(s['final_poa']['se'], 2)}",
                ]
            )
        for key, s in results["selection"].items():
            cells = ", ".join(
                f"{lam:g}: {fmt(pq, 3)} / {fmt(g)}"
                for lam, pq, g in zip(s["lambdas"], s["final_poa"], s["final_nash_gap"])
            )
            N, name = key.split(" ", 1)
            rows.append(
                [
                    N[2:],
                    f"lambda for {name} ({fmt_seeds(s['seeds'])})",
                    f"{s['lambda']:g}",
                    str(len(s["seeds"])),
                    "",
                    f"mean final POA / Nash gap: none {fmt(s['plain_poa'], 3)} / {fmt(s['plain_gap'])}, "
                    + cells,
                    "",
                    s["rule"],
                    f"in-sample gain {fmt_interval(s['in_sample_gain'], 2)}",
                ]
            )
        for key, t in results["paired"].items():
            N, what = key.split(" ", 1)
            rows.append(
                [
                    N[2:],
                    f"paired: {what}",
                    "",
                    str(t["test"]["n"]),
                    "",
                    "",
                    "",
                    t["verdict"],
                    fmt_interval(t["test"], 2),
                ]
            )
        return cols, rows


# ------------------------------------------------------------------------------------ figures
def _figures(ctx: Context, per_n: dict, results: dict, summary: dict) -> None:
    pyplot = plt()
    if pyplot is None:
        return
    runs = len(next(iter(results.values())))
    sel_seeds = fmt_seeds(summary["selection"]["N=2 Softmax-PG"]["seeds"])
    fig, axes = pyplot.subplots(4, len(NS), figsize=(5.4 * len(NS), 14), squeeze=False)
    for col, N in enumerate(NS):
        for row, init in enumerate(INITS):
            for c in per_n[N]:
                if c.meta["algorithm"] in NN and c.meta["init"] != init:
                    continue
                label = c.meta["algorithm"] + (f" + barrier {c.meta['lambda']:g}" if c.meta["lambda"] else "")
                _band(axes[2 * row, col], results[c.label], "poa", c, label)
                _band(axes[2 * row + 1, col], results[c.label], "nash_gap", c, label)
            axes[2 * row, col].set(
                title=f"N = {N}, networks: {INITS[init]}", xlabel="iteration", ylabel="POA"
            )
            axes[2 * row + 1, col].set(xlabel="iteration", ylabel="Nash gap")
            axes[2 * row + 1, col].set_yscale("symlog", linthresh=1e-3)
            axes[2 * row, col].legend(fontsize=6.5, loc="lower right")
    fig.suptitle(
        f"Paper 003 Fig. 2: neural softmax policies, mean +- SE over {runs} initialisations; dashed: log "
        f"barrier with lambda chosen on {sel_seeds} (see chen2022_nn_lambda.png)",
        fontsize=11,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    fig.savefig(ctx.out / "chen2022_coordination_nn.png", dpi=90)
    pyplot.close(fig)
    # what the selection seeds chose, and why
    sel = summary["selection"]
    fig, axes = pyplot.subplots(2, len(NS), figsize=(5.4 * len(NS), 7.5), squeeze=False)
    styles = {"normal": "-", "torch": ":"}
    for col, N in enumerate(NS):
        for n, i in _variants():
            s = sel[f"N={N} {_name(n, i)}"]
            x = np.arange(len(s["lambdas"]) + 1)  # "none", then the grid
            j = 1 + s["lambdas"].index(s["lambda"])
            for row, (key, plain) in enumerate((("final_poa", "plain_poa"), ("final_nash_gap", "plain_gap"))):
                y = [s[plain], *s[key]]
                ax = axes[row, col]
                ax.plot(x, y, styles[i], marker="o", ms=3, color=COLORS[n], label=_name(n, i))
                bad = [k + 1 for k, ok in enumerate(s["eligible"]) if not ok]
                ax.plot(x[bad], np.array(y)[bad], "x", ms=7, mew=1.5, color=COLORS[n])
                ax.plot([x[j]], [y[j]], "o", ms=11, mfc="none", mec=COLORS[n], mew=1.5)
        ticks = ["none"] + [f"{lam:g}" for lam in s["lambdas"]]
        axes[0, col].set(title=f"N = {N}: choosing lambda ({sel_seeds})", ylabel="mean final POA")
        axes[1, col].set(xlabel="log barrier lambda", ylabel="mean final Nash gap")
        axes[1, col].set_yscale("symlog", linthresh=1e-3)
        axes[1, col].set_ylim(bottom=0)
        for ax in axes[:, col]:
            ax.set_xticks(x, ticks)
        axes[0, col].legend(fontsize=6.5, loc="lower left")
    fig.suptitle(
        f"Log barrier weight per algorithm on {sel_seeds}; circled: chosen (highest mean final POA among "
        f"the lambdas whose mean final Nash gap is at most no barrier's + {SELECT_SLACK:g}; x: not eligible)",
        fontsize=10,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(ctx.out / "chen2022_nn_lambda.png", dpi=90)
    pyplot.close(fig)
