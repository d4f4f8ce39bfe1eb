"""Paper 003 (Chen, Zhang, Doan 2022): PG, NPG and NPG-BR (and PG with the log barrier) on the
coordination game, N = 2, 3, 5, exact gradients, POA and Nash gap (Fig. 1), with the step-size
conventions side by side and every comparison paired over seeds.

**Step sizes.** Paper 003 writes NPG as ``theta += eta * A`` (Lemma 3.7) with eta = 0.1 (App. G),
and NPG-BR's inner step (eq. 5) as ``theta += A``, with no eta at all. Paper 001 writes NPG as
``theta += eta / (1 - gamma) * A``, which is our ``inpg``; with gamma = 0.95 that step is 20 times
larger at the same eta. The headline figure uses paper 003's ``eta * A`` with eta = 0.1 for NPG and
NPG-BR (our ``eta = 0.1 * (1 - gamma)``); the sensitivity figure adds NPG and NPG-BR at
``eta / (1 - gamma) * A`` (eta = 0.1) and NPG-BR at eq. (5)'s ``A``.

**Initialisations and seeds.** Paper 003 averages 10 random N(0, 1) initialisations (Fig. 1's
caption); we report 30 (seeds 0-29), shared by the algorithms (seed s gives every algorithm the
same initial logits), so every comparison is a paired test over seeds (:mod:`.stats`). The log
barrier's lambda is chosen from the paper's grid on other seeds (100-119) and reported on seeds
0-29 (:func:`select_lambda`).

**Summaries.** :meth:`Coordination.rederive` recomputes every number of the summary (fractions with
Wilson intervals, means with ddof = 1 standard errors, medians, paired tests, the lambda choice,
verdicts) from the per-run records it stores; :meth:`Coordination.run` builds its summary with it.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    write_run_curves,
)
from baselines.experiments.stats import fmt_interval, fraction, mean_se, paired, paired_verdict
from baselines.train import RunResult, TrainConfig

__all__ = [
    "Coordination",
    "select_lambda",
    "run_records",
    "aggregate",
    "compare",
    "order",
    "selection_seeds",
    "selection_context",
    "fmt_seeds",
]

GAMMA = 0.95
ETA = 0.1
NS = (2, 3, 5)
BEST_K = {2: 50, 3: 5, 5: 5}  # paper 003 §5: the best K of its grid search, per N
GAP_TOL = 1e-3
LAMBDAS = (0.01, 0.1, 1.0, 10.0, 100.0)  # paper 003 §5: the log barrier's grid
#: A lambda is eligible when its runs end no further from an equilibrium than without the barrier,
#: give or take this: mean final Nash gap at most no barrier's + SELECT_SLACK on the selection seeds
#: (values on the coordination game reach 3 / (1 - gamma) = 60)
SELECT_SLACK = 0.1
#: Differences in final POA whose whole 95% interval lies within +-POA_SCALE are "no difference
#: that matters" (a tenth of a percentage point of the optimum's welfare)
POA_SCALE = 1e-3
REPORT_SEEDS = 30  # --full; paper 003 Fig. 1: 10
SELECT_SEEDS = 20  # --full: seeds 100-119 choose lambda
SELECT_FROM = 100
#: Step-size conventions: name -> our eta for NPG-type updates (ours are theta += eta / (1 - gamma) * A)
CONVENTIONS = {
    "eta A": ETA * (1 - GAMMA),  # paper 003, Lemma 3.7, eta = 0.1
    "eta/(1-gamma) A": ETA,  # paper 001, Lemma 2.1, eta = 0.1
    "A (eq. 5)": 1 - GAMMA,  # paper 003 eq. (5): no step size
}
COLORS = {"PG": "C0", "NPG": "C1", "NPG-BR": "C2", "PG + log barrier": "C9"}


# ------------------------------------------------------------------------------------ seeds
def selection_seeds(report: Sequence[int], k: int) -> list[int]:
    """``k`` seeds from :data:`SELECT_FROM` on, none of them a reported seed."""
    out, s = [], SELECT_FROM
    while len(out) < k:
        if s not in report:
            out.append(s)
        s += 1
    return out


def selection_context(ctx: Context) -> Context:
    """The context of the lambda-selection grid: the short version's few runs train in this
    process (a second pool of worker processes would cost more than they do)."""
    return ctx if ctx.full else replace(ctx, workers=1)


# ------------------------------------------------------------------------------------ per-run records
def run_records(curve: Curve, runs: Sequence[RunResult], saturation: bool = False) -> dict:
    """What a summary keeps of each run of a curve: its seed, final POA, final Nash gap, the first
    evaluated iteration from which the Nash gap stays below :data:`GAP_TOL` (None: never), and
    optionally the share of the initial policy's rows whose largest probability exceeds 0.99.

    Returns:
        ``{"meta", "seed", "final_poa", "final_nash_gap", "iterations_to_gap"[, "initial_saturated"]}``,
        lists of one value per run.
    """
    rec: dict = {"meta": dict(curve.meta), "seed": [int(c.seed) for c in curve.configs]}
    rec["final_poa"] = [float(column(r, "poa")[-1]) for r in runs]
    rec["final_nash_gap"] = [gap_value(column(r, "nash_gap")[-1]) for r in runs]
    rec["iterations_to_gap"] = [
        first_below(np.vectorize(gap_value)(column(r, "nash_gap")), iterations(r), GAP_TOL) for r in runs
    ]
    if saturation:
        rec["initial_saturated"] = [float((r.snapshots[0].max(axis=-1) > 0.99).mean()) for r in runs]
    return rec


def censored(rec: dict, horizon: int) -> list[float]:
    """Iterations to a Nash gap below :data:`GAP_TOL`, a run that never gets there counted as the
    horizon (a lower bound of its time, which can only shrink a difference towards 0)."""
    return [float(horizon if x is None else x) for x in rec["iterations_to_gap"]]


def _median(xs: Sequence[int | None]) -> float | None:
    """Median over all runs, a run that never converges counting as +infinity (None if > half)."""
    vals = sorted(np.inf if x is None else x for x in xs)
    m = float(np.median(vals))
    return None if not np.isfinite(m) else m


def aggregate(rec: dict) -> dict:
    """A curve's aggregates from its per-run records: runs, the converged fraction (Wilson), the
    median iterations to gap, mean +- SE (ddof = 1) of the final POA and Nash gap (and of the
    initial saturated share when recorded)."""
    poa, gap = mean_se(rec["final_poa"]), mean_se(rec["final_nash_gap"])
    out = {
        "runs": len(rec["seed"]),
        "converged": fraction([x is not None for x in rec["iterations_to_gap"]]),
        "median_iterations_to_gap": _median(rec["iterations_to_gap"]),
        "final_poa": {"mean": poa[0], "se": poa[1]},
        "final_nash_gap": {"mean": gap[0], "se": gap[1]},
    }
    if "initial_saturated" in rec:
        m, se = mean_se(rec["initial_saturated"])
        out["initial_saturated"] = {"mean": m, "se": se}
    return out


def compare(recs: dict, a: str, b: str, metric: str, horizon: int, name_a: str, name_b: str) -> dict:
    """Paired test of curves ``a`` and ``b`` (labels of ``recs``) over their common seeds.

    Args:
        recs: label -> per-run records.
        a: Label of method A.
        b: Label of method B.
        metric: ``"final_poa"`` (A - B; "higher"), ``"final_nash_gap"`` (A - B; "higher") or
            ``"iterations"`` (iterations to gap, censored at ``horizon``, A - B; the verdict says
            who is "faster").
        horizon: Iterations of the runs.
        name_a: A's name in the verdict.
        name_b: B's name in the verdict.

    Returns:
        ``{"a", "b", "metric", "test": stats.paired(...), "verdict"}``.

    Raises:
        ValueError: The two curves ran on different seeds.
    """
    ra, rb = recs[a], recs[b]
    if ra["seed"] != rb["seed"]:
        raise ValueError(f"{a!r} and {b!r} ran on different seeds: a paired test needs the same ones")
    if metric == "iterations":  # A - B: negative when A gets there in fewer iterations
        test = paired(censored(ra, horizon), censored(rb, horizon))
        verdict = paired_verdict(test, name_b, name_a).replace(" higher", " faster")
    else:
        test = paired(ra[metric], rb[metric])
        verdict = paired_verdict(test, name_a, name_b, POA_SCALE if metric == "final_poa" else 0.0)
    return {"a": a, "b": b, "metric": metric, "test": test, "verdict": verdict}


def order(names: Sequence[str], tests: dict[tuple[str, str], dict], sign: float) -> str:
    """Methods ranked by a paired metric: ``"NPG-BR < NPG < PG"``, adjacent methods joined by ``<``
    (or ``>``) when their paired test separates them, ``~`` when it does not.

    Args:
        names: The methods.
        tests: (a, b) -> a :func:`compare` dict for every pair (either order).
        sign: +1 to rank by the paired mean ascending (joined by ``<``: iterations), -1 descending
            (joined by ``>``: POA).
    """

    def diff(a: str, b: str) -> tuple[float, bool]:  # mean of (a - b) in the ranked metric, separated?
        if (a, b) in tests:
            t = tests[a, b]
            s = 1.0
        else:
            t = tests[b, a]
            s = -1.0
        p = t["test"]
        mean = s * p["mean"]
        sep = not t["verdict"].startswith(("no ", "one "))
        return mean, sep

    # rank by the sum of paired differences to the others (one number per method)
    score = {a: sum(diff(a, b)[0] for b in names if b != a) for a in names}
    ranked = sorted(names, key=lambda a: sign * score[a])
    fwd, back = ("<", ">") if sign > 0 else (">", "<")
    text = ranked[0]
    for prev, a in zip(ranked, ranked[1:]):
        mean, sep = diff(prev, a)
        # a separated pair whose interval disagrees with the ranking by sums is printed as it is
        text += f" {(fwd if sign * mean < 0 else back) if sep else '~'} {a}"
    return text


# ------------------------------------------------------------------------------------ lambda
def select_lambda(plain: dict, by_lambda: dict[float, dict]) -> dict:
    """Choose the log barrier's lambda on selection seeds.

    Paper 003 kept "the one with the best POA". A barrier's stationary points are only
    O(lambda)-Nash (Lemma 3.5; Theorem 3.6 sets lambda from the Nash gap wanted): a large lambda
    holds the policy near uniform, far from every equilibrium, where a "POA" is no price of anarchy
    (on the coordination game lambda = 10 ends with Nash gaps near 3). The rule here is the paper's,
    the highest mean final POA, among the lambdas whose runs end no further from an equilibrium
    than the algorithm's own without the barrier (mean final Nash gap at most no barrier's +
    :data:`SELECT_SLACK`; relative, because plain PG is still far from equilibrium after 400
    iterations at N = 5); when no lambda is eligible, the smallest mean final Nash gap.

    Args:
        plain: Per-run records of the algorithm without the barrier on the selection seeds.
        by_lambda: lambda -> per-run records with the barrier, on the same seeds.

    Returns:
        ``{"seeds", "lambdas", "final_poa", "final_nash_gap", "plain_poa", "plain_gap", "lambda",
        "rule", "in_sample_gain"}``: the means per lambda, the choice, which rule chose it and the
        chosen lambda's POA gain over no barrier on these same seeds (paired; the optimism of
        choosing and reporting on the same seeds).
    """
    lams = sorted(by_lambda)
    poa = [float(np.mean(by_lambda[lam]["final_poa"])) for lam in lams]
    gap = [float(np.mean(by_lambda[lam]["final_nash_gap"])) for lam in lams]
    plain_gap = float(np.mean(plain["final_nash_gap"]))
    eligible = [g <= plain_gap + SELECT_SLACK for g in gap]
    if any(eligible):
        j = max((k for k, ok in enumerate(eligible) if ok), key=lambda k: (poa[k], -k))
        rule = f"best POA among gaps <= no barrier's + {SELECT_SLACK:g}"
    else:
        j = min(range(len(lams)), key=lambda k: (gap[k], k))
        rule = f"every gap > no barrier's + {SELECT_SLACK:g}: smallest gap"
    chosen = by_lambda[lams[j]]
    if chosen["seed"] != plain["seed"]:
        raise ValueError("selection runs with and without the barrier must share their seeds")
    return {
        "seeds": list(plain["seed"]),
        "lambdas": lams,
        "final_poa": poa,
        "final_nash_gap": gap,
        "eligible": eligible,
        "plain_poa": float(np.mean(plain["final_poa"])),
        "plain_gap": plain_gap,
        "lambda": lams[j],
        "rule": rule,
        "in_sample_gain": paired(chosen["final_poa"], plain["final_poa"]),
    }


def fmt_seeds(seeds: Sequence[int]) -> str:
    """``"seeds 100-119"`` (a run of consecutive seeds), ``"seed 100"`` or ``"seeds 1, 5, 9"``."""
    s = list(seeds)
    if len(s) == 1:
        return f"seed {s[0]}"
    if s == list(range(s[0], s[0] + len(s))):
        return f"seeds {s[0]}-{s[-1]}"
    return "seeds " + ", ".join(map(str, s))


# ------------------------------------------------------------------------------------ the grid
def _base(N: int, iters: int, out: str) -> TrainConfig:
    return TrainConfig(
        env="mpg/Coordination-v0", env_kwargs={"n_agents": N}, estimator="exact", iters=iters,
        eval_every=1, eval_log=False, out=out,
    )  # fmt: skip


def _curve(N, seeds, base, label, name, algo, conv, style="-", role="report", **kw) -> Curve:
    cfg = replace(base, algo=algo, algo_kwargs={"eta": ETA, **kw})
    meta = {
        "algorithm": name,
        "convention": conv,
        "n_agents": N,
        "role": role,
        "lambda": float(kw.get("log_barrier", 0.0)),
        "inner_steps": kw.get("inner_steps"),
        "eta": cfg.algo_kwargs["eta"],
    }
    return Curve(f"N={N} {label}", [replace(cfg, seed=s) for s in seeds], COLORS[name], style, meta)


def _selection_curves(N: int, seeds: list[int], out: str, iters: int, lambdas) -> list[Curve]:
    base = _base(N, iters, out)
    curves = [_curve(N, seeds, base, "PG (selection seeds)", "PG", "ipg", "eta grad", role="select")]
    for lam in lambdas:
        curves.append(
            _curve(N, seeds, base, f"PG + log barrier {lam:g} (selection seeds)", "PG + log barrier", "ipg",
                   "eta grad", "--", role="select", log_barrier=lam)
        )  # fmt: skip
    return curves


def _report_curves(N: int, seeds: list[int], out: str, iters: int, k: int, lam: float) -> list[Curve]:
    base = _base(N, iters, out)
    e_a, e_20 = CONVENTIONS["eta A"], CONVENTIONS["eta/(1-gamma) A"]
    return [
        _curve(N, seeds, base, "PG", "PG", "ipg", "eta grad"),
        _curve(N, seeds, base, "NPG (eta A)", "NPG", "inpg", "eta A", eta=e_a),
        _curve(N, seeds, base, f"NPG-BR (K={k}, eta A)", "NPG-BR", "npg_br", "eta A", eta=e_a, inner_steps=k),
        _curve(N, seeds, base, f"PG + log barrier (lambda={lam:g})", "PG + log barrier", "ipg", "eta grad",
               "--", log_barrier=lam),
        _curve(N, seeds, base, "NPG (eta/(1-gamma) A)", "NPG", "inpg", "eta/(1-gamma) A", ":", eta=e_20),
        _curve(N, seeds, base, f"NPG-BR (K={k}, eta/(1-gamma) A)", "NPG-BR", "npg_br", "eta/(1-gamma) A", ":",
               eta=e_20, inner_steps=k),
        _curve(N, seeds, base, f"NPG-BR (K={k}, A as eq. 5)", "NPG-BR", "npg_br", "A (eq. 5)", "-.",
               eta=CONVENTIONS["A (eq. 5)"], inner_steps=k),
    ]  # fmt: skip


def _find(recs: dict, N: int, algorithm: str, convention: str | None = None, role: str = "report") -> str:
    """The label of the one curve with these properties."""
    hits = [
        label
        for label, r in recs.items()
        if r["meta"]["n_agents"] == N
        and r["meta"]["algorithm"] == algorithm
        and r["meta"]["role"] == role
        and (convention is None or r["meta"]["convention"] == convention)
    ]
    if len(hits) != 1:
        raise ValueError(f"expected one {role} curve {algorithm} ({convention}) at N={N}, found {hits}")
    return hits[0]


class Coordination:
    """``chen2022-coordination``: paper 003 Fig. 1."""

    NAME = "chen2022-coordination"
    TITLE = "Paper 003, coordination game (Fig. 1)"
    PAPER = "Chen, Zhang, Doan 2022, §5.1"
    DESCRIPTION = (
        "Exact gradients, gamma = 0.95, uniform mu, N(0, 1) initial logits shared by all algorithms "
        "(seed s gives every algorithm the same ones), eta = 0.1 in paper 003's convention (NPG and "
        "NPG-BR: `theta += 0.1 A`), K per N as the paper's best (50 / 5 / 5), 400 iterations. Paper 003 "
        "averages 10 initialisations; we report 30 (seeds 0-29). The log barrier's lambda is chosen from "
        "the paper's grid {0.01, 0.1, 1, 10, 100} on seeds 100-119 (the highest mean final POA among the "
        f"lambdas whose mean final Nash gap is at most PG's own + {SELECT_SLACK:g}, i.e. whose runs end "
        "no further from an equilibrium; the paper kept the best POA of its own runs, whatever their Nash "
        "gap) and reported on seeds 0-29. Eq. (5), NPG-BR's inner step, has no step size "
        "(`theta += A`); paper 001's NPG step is `eta / (1 - gamma) A`, 20 times larger here: both are "
        "run too. Iterations to equilibrium: first iteration from which the exact Nash gap stays below "
        "1e-3 (converged fractions with Wilson 95% intervals; medians count runs that never get there as "
        "infinite). Every comparison is paired over the 30 seeds: mean difference [95% t interval]; speed "
        "compares iterations to gap < 1e-3 with a run that never gets there counted as 400 (which can "
        "only shrink a difference); a verdict word comes from the interval (`~`: the interval contains "
        f"0; a POA difference whose interval lies within +-{POA_SCALE:g} is called no difference that "
        "matters). Standard errors use ddof = 1. NPG-BR spends N(K+1)+1 estimates per outer iteration, "
        "NPG and PG one."
    )

    @staticmethod
    def run(ctx: Context) -> dict:
        seeds = ctx.seed_list(REPORT_SEEDS, 3)
        sel_seeds = selection_seeds(seeds, SELECT_SEEDS if ctx.full else 2)
        iters = 400 if ctx.full else 150
        lambdas = LAMBDAS if ctx.full else (0.1,)
        horizon = min(iters, ctx.max_iters) if ctx.max_iters else iters
        out = str(ctx.out / "runs")
        per_run: dict[str, dict] = {}
        sel = [c for N in NS for c in _selection_curves(N, sel_seeds, out, iters, lambdas)]
        got = run_grid(Coordination.NAME, sel, selection_context(ctx))
        per_run.update({c.label: run_records(c, got[c.label]) for c in sel})
        chosen = {N: select_lambda(*_selection_inputs(per_run, N))["lambda"] for N in NS}
        per_n = {
            N: _report_curves(N, seeds, out, iters, BEST_K[N] if ctx.full else min(BEST_K[N], 5), chosen[N])
            for N in NS
        }
        rep = [c for cs in per_n.values() for c in cs]
        results = run_grid(Coordination.NAME, rep, ctx)
        per_run.update({c.label: run_records(c, results[c.label]) for c in rep})
        summary = Coordination.rederive(
            {"iterations": horizon, "gap_tolerance": GAP_TOL, "lambdas": list(lambdas), "per_run": per_run}
        )
        write_run_curves(ctx.out / "curves.csv", rep, results)
        _figures(ctx, per_n, results, summary)
        return summary

    @staticmethod
    def rederive(results: dict) -> dict:
        """Every aggregate of a summary, recomputed from its per-run records (``results["per_run"]``).

        Returns:
            ``{"iterations", "gap_tolerance", "lambdas", "per_run", "curves", "selection",
            "paired", "verdicts"}``.

        Raises:
            ValueError: A reported barrier curve's lambda is not the one its selection runs choose.
        """
        recs = results["per_run"]
        horizon = results["iterations"]
        curves = {label: {**r["meta"], "label": label, **aggregate(r)} for label, r in recs.items()}
        selection, paired_tests, verdicts = {}, {}, {}
        for N in NS:
            sel = select_lambda(*_selection_inputs(recs, N))
            bar = _find(recs, N, "PG + log barrier")
            if recs[bar]["meta"]["lambda"] != sel["lambda"]:
                raise ValueError(
                    f"N={N}: the reported PG + log barrier runs use lambda={recs[bar]['meta']['lambda']:g}, "
                    f"the selection seeds choose {sel['lambda']:g}"
                )
            selection[f"N={N} PG"] = sel
            lab = {
                ("NPG", "eta A"): _find(recs, N, "NPG", "eta A"),
                ("NPG-BR", "eta A"): _find(recs, N, "NPG-BR", "eta A"),
                ("NPG", "2 A"): _find(recs, N, "NPG", "eta/(1-gamma) A"),
                ("NPG-BR", "2 A"): _find(recs, N, "NPG-BR", "eta/(1-gamma) A"),
                ("PG", ""): _find(recs, N, "PG"),
                ("PG + log barrier", ""): bar,
            }
            speed, poa = {}, {}
            for (a, ca), (b, cb) in [
                (("NPG", "eta A"), ("NPG-BR", "eta A")),
                (("NPG", "eta A"), ("PG", "")),
                (("NPG-BR", "eta A"), ("PG", "")),
            ]:
                speed[a, b] = compare(recs, lab[a, ca], lab[b, cb], "iterations", horizon, a, b)
                poa[a, b] = compare(recs, lab[a, ca], lab[b, cb], "final_poa", horizon, a, b)
                paired_tests[f"N={N} {a} vs {b} (eta A): iterations"] = speed[a, b]
                paired_tests[f"N={N} {a} vs {b} (eta A): final POA"] = poa[a, b]
            npg2, br2 = lab["NPG", "2 A"], lab["NPG-BR", "2 A"]
            paired_tests[f"N={N} NPG vs NPG-BR (2 A): iterations"] = compare(
                recs, npg2, br2, "iterations", horizon, "NPG", "NPG-BR"
            )
            paired_tests[f"N={N} NPG vs NPG-BR (2 A): final POA"] = compare(
                recs, npg2, br2, "final_poa", horizon, "NPG", "NPG-BR"
            )
            name = "PG + log barrier"
            paired_tests[f"N={N} {name} vs PG: final POA"] = compare(
                recs, bar, lab["PG", ""], "final_poa", horizon, name, "PG"
            )
            paired_tests[f"N={N} {name} vs PG: final Nash gap"] = compare(
                recs, bar, lab["PG", ""], "final_nash_gap", horizon, name, "PG"
            )
            algs = ("NPG", "NPG-BR", "PG")
            verdicts[f"N={N} speed order"] = order(algs, speed, +1)
            verdicts[f"N={N} POA order"] = order(algs, poa, -1)
        return {
            "iterations": horizon,
            "gap_tolerance": results["gap_tolerance"],
            "lambdas": list(results["lambdas"]),
            "per_run": recs,
            "curves": curves,
            "selection": selection,
            "paired": paired_tests,
            "verdicts": verdicts,
        }

    @staticmethod
    def headline(results: dict) -> list[tuple[str, str, str]]:
        cur, p, v = results["curves"], results["paired"], results["verdicts"]
        report = [c for c in cur.values() if c["role"] == "report"]

        def pick(alg, conv, N):
            return next(
                s for s in report if s["algorithm"] == alg and s["convention"] == conv and s["n_agents"] == N
            )

        def per_n(f):
            return " / ".join(f(N) for N in NS)

        runs = pick("PG", "eta grad", 2)["runs"]
        its = results["iterations"]
        ks = per_n(lambda N: str(pick("NPG-BR", "eta A", N)["inner_steps"]))

        def conv(alg, c):
            return per_n(lambda N: f"{pick(alg, c, N)['converged']['k']}")

        def tests(key):  # a paired difference and its 95% interval, per N
            return per_n(lambda N: fmt_interval(p[f"N={N} {key}"]["test"], 2))

        def verdicts(key):
            return per_n(lambda N: p[f"N={N} {key}"]["verdict"])

        def med(alg, c):
            return per_n(lambda N: fmt(pick(alg, c, N)["median_iterations_to_gap"], 3))

        bar = per_n(lambda N: f"{results['selection'][f'N={N} PG']['lambda']:g}")
        sel = results["selection"]["N=2 PG"]["seeds"]
        b = "PG + log barrier vs PG"
        return [
            (
                f"coordination N = 2 / 3 / 5, exact, eta = 0.1 as paper 003 writes it (eta A), {its} "
                f"iterations, {runs} initialisations (paper: 10)",
                "NPG converges fastest, NPG-BR second, PG slowest",
                "order by iterations to Nash gap < 1e-3, paired over seeds: "
                f"{per_n(lambda N: v[f'N={N} speed order'])} (`<`: significantly faster than the next; `~`: "
                f"no significant difference from the next). Converged of {runs}: NPG-BR (K = {ks}) "
                f"{conv('NPG-BR', 'eta A')}, NPG "
                f"{conv('NPG', 'eta A')}, PG {conv('PG', 'eta grad')}; NPG - NPG-BR iterations "
                f"{tests('NPG vs NPG-BR (eta A): iterations')}. NPG-BR spends N(K+1)+1 estimates per outer "
                "iteration",
            ),
            (
                "same, NPG and NPG-BR at eta/(1-gamma) A (paper 001's form: 20x the step)",
                "as above",
                f"median iterations NPG {med('NPG', 'eta/(1-gamma) A')}, NPG-BR "
                f"{med('NPG-BR', 'eta/(1-gamma) A')}; "
                f"NPG - NPG-BR iterations {tests('NPG vs NPG-BR (2 A): iterations')}: "
                f"{verdicts('NPG vs NPG-BR (2 A): iterations')}",
            ),
            (
                "final POA, N = 2 / 3 / 5",
                "NPG highest, NPG-BR second, PG lowest",
                f"order by final POA, paired over seeds: {per_n(lambda N: v[f'N={N} POA order'])} (`>`: "
                "significantly higher than the next; `~`: no significant difference from the next). "
                "NPG - NPG-BR "
                f"{tests('NPG vs NPG-BR (eta A): final POA')}; NPG - PG "
                f"{tests('NPG vs PG (eta A): final POA')}; "
                f"NPG-BR - PG {tests('NPG-BR vs PG (eta A): final POA')}",
            ),
            (
                f"PG + log barrier, lambda chosen on {fmt_seeds(sel)}",
                "dashed lines (best lambda); a small effect under tabular softmax (§5.2)",
                f"lambda {bar}; final POA minus PG's {tests(b + ': final POA')}: "
                f"{verdicts(b + ': final POA')}; "
                f"final Nash gap minus PG's {tests(b + ': final Nash gap')}",
            ),
        ]

    @staticmethod
    def table(results: dict) -> tuple[list[str], list[list[str]]]:
        cols = [
            "N",
            "algorithm",
            "step",
            "estimates / iteration",
            "converged (gap < 1e-3, 95% CI)",
            "median iterations",
            "final Nash gap (mean +- SE)",
            "final POA (mean +- SE)",
        ]
        steps = {
            "eta grad": "0.1 grad",
            "eta A": "0.1 A",
            "eta/(1-gamma) A": "2 A (0.1/(1-gamma))",
            "A (eq. 5)": "A",
        }
        rows = []
        for s in results["curves"].values():
            if s["role"] != "report":
                continue
            k, N = s["inner_steps"], s["n_agents"]
            c = s["converged"]
            rows.append(
                [
                    str(N),
                    s["algorithm"]
                    + (f" (K={k})" if k else "")
                    + (f" (lambda={s['lambda']:g})" if s["lambda"] else ""),
                    steps[s["convention"]],
                    str(N * (k + 1) + 1 if k else 1),
                    f"{c['k']}/{c['n']} ({100 * c['low']:.0f}-{100 * c['high']:.0f}%)",
                    fmt(s["median_iterations_to_gap"], 3),
                    f"{fmt(s['final_nash_gap']['mean'])} +- {fmt(s['final_nash_gap']['se'])}",
                    f"{fmt(s['final_poa']['mean'], 3)} +- {fmt(s['final_poa']['se'], 2)}",
                ]
            )
        for key, t in results["paired"].items():
            N, what = key.split(" ", 1)
            pair, metric = what.rsplit(": ", 1)
            unit = f"{metric} (A - B)"
            rows.append(
                [
                    N[2:],
                    f"paired: {pair}",
                    "",
                    "",
                    f"{unit}: {fmt_interval(t['test'], 2)}, p = {fmt(t['test']['p'])}",
                    "",
                    "",
                    t["verdict"],
                ]
            )
        for key, s in results["selection"].items():
            cells = ", ".join(
                f"{lam:g}: {fmt(pq, 3)} / {fmt(g)}"
                for lam, pq, g in zip(s["lambdas"], s["final_poa"], s["final_nash_gap"])
            )
            rows.append(
                [
                    key.split(" ")[0][2:],
                    f"lambda for PG + log barrier ({fmt_seeds(s['seeds'])})",
                    "",
                    "",
                    f"mean final POA / Nash gap per lambda: {cells}; no barrier {fmt(s['plain_poa'], 3)} / "
                    f"{fmt(s['plain_gap'])}",
                    "",
                    "",
                    f"lambda = {s['lambda']:g} ({s['rule']})",
                ]
            )
        return cols, rows


def _selection_inputs(
    recs: dict, N: int, algorithm: str = "PG", barrier: str = "PG + log barrier", **match
) -> tuple:
    """(plain records, {lambda: barrier records}) of an algorithm's selection runs at N."""

    def ok(r: dict) -> bool:
        m = r["meta"]
        return m["role"] == "select" and m["n_agents"] == N and all(m.get(k) == v for k, v in match.items())

    plain = [
        r for r in recs.values() if ok(r) and r["meta"]["algorithm"] == algorithm and not r["meta"]["lambda"]
    ]
    bars = {r["meta"]["lambda"]: r for r in recs.values() if ok(r) and r["meta"]["algorithm"] == barrier}
    if len(plain) != 1 or not bars:
        raise ValueError(
            f"N={N} {algorithm} {match}: no selection runs (plain: {len(plain)}, lambdas: {sorted(bars)})"
        )
    return plain[0], bars


# ------------------------------------------------------------------------------------ figures
def _figures(ctx: Context, per_n: dict, results: dict, summary: dict) -> None:
    pyplot = plt()
    if pyplot is None:
        return
    p = summary["paired"]
    runs = len(next(iter(results.values())))
    # Fig. 1 as in the paper: POA (top) and Nash gap (bottom), mean +- standard error
    fig, axes = pyplot.subplots(2, len(NS), figsize=(5.2 * len(NS), 7.8), squeeze=False)
    for col, N in enumerate(NS):
        for c in per_n[N][:4]:
            _band(axes[0, col], results[c.label], "poa", c, markevery=40 if "barrier" in c.label else None)
            _band(
                axes[1, col], results[c.label], "nash_gap", c, markevery=40 if "barrier" in c.label else None
            )
        axes[0, col].set(title=f"Coordination game, N = {N}", xlabel="iteration", ylabel="POA")
        axes[1, col].set(xlabel="iteration", ylabel="Nash gap")
        axes[1, col].set_yscale("symlog", linthresh=1e-3)
        axes[0, col].legend(fontsize=7, loc="lower right")
        d = p[f"N={N} PG + log barrier vs PG: final POA"]
        axes[0, col].text(
            0.98, 0.36,
            ("PG + barrier (dots) lies on PG; " if d["verdict"] == "no difference that matters" else "")
            + f"final POA, PG + barrier - PG:\n{fmt_interval(d['test'], 2)}: {d['verdict']}",
            transform=axes[0, col].transAxes, ha="right", va="bottom", fontsize=7,
            color=COLORS["PG + log barrier"],
        )  # fmt: skip
    fig.suptitle(
        "Paper 003 Fig. 1 (eta = 0.1 in the paper's eta A form): mean +- standard error over "
        f"{runs} initialisations; the barrier's lambda chosen on "
        + fmt_seeds(summary["selection"]["N=2 PG"]["seeds"]),
        fontsize=11,
    )
    fig.tight_layout()
    fig.savefig(ctx.out / "chen2022_coordination.png", dpi=100)
    pyplot.close(fig)
    # step-size conventions and the paired comparison
    fig, axes = pyplot.subplots(2, len(NS), figsize=(5.2 * len(NS), 7.8), squeeze=False)
    for col, N in enumerate(NS):
        for c in per_n[N]:
            if c.meta["algorithm"] in ("NPG", "NPG-BR"):
                _band(axes[0, col], results[c.label], "nash_gap", c)
        axes[0, col].set(title=f"N = {N}: NPG and NPG-BR by step size", xlabel="iteration", ylabel="Nash gap")
        axes[0, col].set_yscale("symlog", linthresh=1e-3)
        axes[0, col].legend(fontsize=7, loc="upper right")
        ax = axes[1, col]
        ticks = []
        for j, conv in enumerate(("eta A", "2 A")):
            t = p[f"N={N} NPG vs NPG-BR ({conv}): final POA"]
            a, b = summary["per_run"][t["a"]]["final_poa"], summary["per_run"][t["b"]]["final_poa"]
            d = np.array(a) - np.array(b)
            jitter = np.linspace(-0.15, 0.15, len(d))
            ax.scatter(np.full(len(d), j) + jitter, d, color="C1", s=14, alpha=0.7)
            m, lo, hi = t["test"]["mean"], t["test"]["low"], t["test"]["high"]
            ax.errorbar(j + 0.3, m, yerr=[[m - lo], [hi - m]], fmt="s", color="k", capsize=4)
            step = "0.1 A" if conv == "eta A" else "0.1/(1-gamma) A = 2 A"
            ticks.append(f"{step}\n{t['verdict']}")
        ax.axhline(0, color="0.5", lw=0.8)
        ax.set_xticks([0, 1], ticks, fontsize=8)
        ax.set_xlim(-0.5, 1.6)
        ax.set(
            title=f"N = {N}: final POA, NPG - NPG-BR (dots: seeds;\nsquare: mean and its 95% interval)",
            ylabel="final POA, NPG - NPG-BR",
        )
    fig.tight_layout()
    fig.savefig(ctx.out / "chen2022_step_sizes.png", dpi=100)
    pyplot.close(fig)


def _band(ax, runs, key: str, c: Curve, label: str | None = None, markevery: int | None = None) -> None:
    """Mean +- standard error (ddof = 1) of one metric over a curve's runs."""
    its = iterations(runs[0])
    Y = stack([column(r, key) for r in runs])
    m = Y.mean(axis=0)
    s = Y.std(axis=0, ddof=1) / np.sqrt(len(Y)) if len(Y) > 1 else np.zeros_like(m)
    kw = {"marker": "o", "markersize": 3, "markevery": markevery} if markevery else {}
    ax.plot(its, m, c.style, color=c.color, label=label or c.label.split(" ", 1)[1], **kw)
    ax.fill_between(its, m - s, m + s, color=c.color, alpha=0.15)
