"""Paper 004 (Zeng et al., *A Decentralized Policy Gradient Approach to Multi-Task RL*) §5.1 Fig. 2
and §2.2's chains: tabular DCPG on multi-task GridWorlds.

**The paper's protocol, as far as it is stated**: Algorithm 1 with Monte Carlo local gradients
(one episode per agent per iteration, our REINFORCE with every-visit returns, at most 100 steps),
a ring with lazy Metropolis weights, 1000 training episodes, then the averaged policy tested in
every task. The paper gives no step size, regulariser weight, discount, start distribution or
number of runs, and no code of its own is public. We use gamma = 0.95, the layouts' start cell,
uniform initial policy, and the step size and lambda chosen by a search over alpha in {1, 3, 10,
30} x lambda in {0, 0.01, 0.1} on seeds 100-102, one pair for all five layouts (the best total
objective): alpha = 3, lambda = 0.01 (the table is in ``SEARCH``; its runs took 9 minutes). The
layouts are our reconstruction of Fig. 2, whose picture is not in the paper's text.

**Beside it**: the same DCPG with exact local gradients (deterministic: one run per layout).

**Oracles**: each task's own optimum (value iteration) and brackets of the centralised optimum of
``sum_i V_i`` over shared policies (:func:`~baselines.consensus.objective.shared_optimum`): the
best deterministic shared policy (exact, by branch and bound) and an upper bound over policies that
also see which tasks still run.

**Chains** (§2.2): exact-gradient DCPG on both 2-task chains with gamma = sqrt(1/2) (the paper's
specialisation) and p = 0.75, from the uniform start and from 10 N(0, 1) starts; each run's limit
is matched to the closest of the closed-form stationary points the package pins.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from baselines.consensus.dcpg import DCPGConfig
from baselines.consensus.objective import TaskSet, shared_optimum
from baselines.experiments.common import Context, first_from, fmt, plt, write_curves
from baselines.experiments.dcpg_grid import run_dcpg_grid

__all__ = ["GridWorld", "SEARCH"]

LAYOUTS = {
    "no_conflict": ("(a) no conflict", "every goal found"),
    "resolvable_conflict": ("(b) resolvable conflict", "every goal found"),
    "unresolvable_conflict": ("(c) unresolvable conflict", "3 of 4 goals (a compromise)"),
    "start_top_left": ("(d) start top left", "not optimal"),
    "start_top_right": ("(e) start top right", "optimal"),
}
GAMMA = 0.95
ALPHA, LAM = 3.0, 0.01
#: The step-size search (seeds 100-102, 1000 iterations): (alpha, lambda) -> mean final objective
#: summed over the five layouts. Regenerate with ``SEARCH_GRID`` and :func:`search`.
SEARCH = {
    (1, 0): 3.091, (1, 0.01): 3.51, (1, 0.1): 2.73,
    (3, 0): 4.484, (3, 0.01): 5.651, (3, 0.1): 3.812,
    (10, 0): 4.077, (10, 0.01): 4.369, (10, 0.1): 4.635,
    (30, 0): 1.693, (30, 0.01): 3.035, (30, 0.1): 2.412,
}  # fmt: skip
SEARCH_GRID = ((1, 3, 10, 30), (0, 0.01, 0.1), (100, 101, 102))
CHAIN_GAMMA, CHAIN_P = math.sqrt(0.5), 0.75
SUCCESS = 0.5  # a task "is solved" when the policy reaches its goal within 100 steps w.p. > 1/2


def _base(layout: str, out: str, iters: int) -> DCPGConfig:
    return DCPGConfig(layout=layout, gamma=GAMMA, alpha=ALPHA, lam=LAM, iters=iters, eval_every=50, out=out)


def search(ctx: Context) -> dict[tuple[float, float], float]:
    """The step-size search behind :data:`SEARCH` (180 runs)."""
    alphas, lams, seeds = SEARCH_GRID
    cfgs = [
        replace(_base(lay, str(ctx.out / "search"), 1000), alpha=a, lam=lam, seed=s, eval_every=1000)
        for lay in LAYOUTS
        for a in alphas
        for lam in lams
        for s in seeds
    ]
    runs = run_dcpg_grid("search", cfgs, ctx)
    out: dict[tuple[float, float], list[float]] = {}
    for c, r in zip(cfgs, runs):
        out.setdefault((c.alpha, c.lam), []).append(r.last["objective"])
    return {k: round(float(np.sum(v) / len(seeds)), 3) for k, v in out.items()}


def _closed_forms(g: float, p: float) -> dict[str, dict[str, float]]:
    """§2.2's stationary points (paper 004 App. A; pinned by tests/test_dcpg.py)."""
    det = g * (-2 * g**2 * p + g**2 + 2 * p - 1) / (g**4 * p**2 - g**4 * p + g**2 - 1)
    return {
        "chain_reversed": {"uniform in S3 (global max)": 2 * g / (2 - g**2), "deterministic in S3": g},
        "chain_slip": {
            "deterministic in S3 (global max)": det,
            "uniform in S3": g * (2 - 4 * p) / (2 - g**2),
        },
    }


class GridWorld:
    """``zeng2021-gridworld``: paper 004 Fig. 2 (a)-(e) and §2.2's chains."""

    NAME = "zeng2021-gridworld"
    TITLE = "Paper 004, multi-task GridWorld (Fig. 2) and the §2.2 chains"
    PAPER = "Zeng et al. 2021, §5.1 and §2.2"
    DESCRIPTION = (
        "Tabular DCPG, Monte Carlo local gradients (one 100-step episode per agent per iteration), ring "
        "with lazy Metropolis weights, 1000 iterations, gamma = 0.95, the layout's start cell, uniform "
        f"initial policy, alpha = {ALPHA:g}, lambda = {LAM:g} (searched over alpha in {{1, 3, 10, 30}} x "
        "lambda in {0, 0.01, 0.1} on seeds 100-102, one pair for all layouts: the paper gives neither), "
        "10 seeds; beside it the same with exact local gradients. Per task: the averaged policy's success "
        "rate (goal within 100 steps) and value against the task's own optimum; the objective against "
        "the centralised optimum's brackets (best known shared policy -- the best deterministic one, exact "
        "by branch and bound, or a better trained run; upper bound over policies that also see which "
        "tasks still run). 'Solved' = success > 0.5. Our "
        "10x10 layouts reconstruct Fig. 2, whose picture is not in the paper's text. Chains: exact DCPG, "
        "gamma = sqrt(1/2), p = 0.75, from the uniform start and 10 N(0, 1) starts, each limit matched "
        "to the closest closed-form stationary point. In layout (c) a conflicting cell pays +1 to one task "
        "and -1 to the other on the same step, so collecting 3 of the 4 goals is worth exactly as much as "
        "collecting 2."
    )

    @staticmethod
    def run(ctx: Context) -> dict:
        seeds = ctx.seed_list(10, 2)
        iters = 1000 if ctx.full else 300
        runs_out = str(ctx.out / "runs")
        mc_cfgs = [replace(_base(lay, runs_out, iters), seed=s) for lay in LAYOUTS for s in seeds]
        ex_cfgs = [replace(_base(lay, runs_out, iters), gradient="exact") for lay in LAYOUTS]
        chain_seeds = list(range(10 if ctx.full else 2))
        chain_cfgs = [
            DCPGConfig(layout=lay, gamma=CHAIN_GAMMA, chain_p=CHAIN_P, gradient="exact", alpha=2.0,
                       init=init, seed=s, iters=4000 if ctx.full else 500, eval_every=100, out=runs_out)
            for lay in ("chain_reversed", "chain_slip")
            for init, s in [("zeros", 0)] + [("normal", s) for s in chain_seeds]
        ]  # fmt: skip
        runs = run_dcpg_grid(GridWorld.NAME, mc_cfgs + ex_cfgs + chain_cfgs, ctx)
        mc = {lay: runs[k * len(seeds) : (k + 1) * len(seeds)] for k, lay in enumerate(LAYOUTS)}
        ex = dict(zip(LAYOUTS, runs[len(mc_cfgs) : len(mc_cfgs) + len(ex_cfgs)]))
        chains = runs[len(mc_cfgs) + len(ex_cfgs) :]
        from mpg_envs.gridworld.env import MultiTaskGridWorldEnv

        results: dict = {"alpha": ALPHA, "lam": LAM, "iters": iters, "seeds": seeds, "layouts": {}}
        optima = {}
        series = {}
        for lay, (label, claim) in LAYOUTS.items():
            env = MultiTaskGridWorldEnv(layout=lay, gamma=GAMMA)
            ts = TaskSet.from_env(env)
            N = len(env.tasks)
            opt = shared_optimum(env.tasks, GAMMA, max_nodes=2_000_000 if ctx.full else 100_000)
            own_opt = [shared_optimum([t], GAMMA).bound for t in env.tasks]
            optima[lay] = opt.policy
            det_vals = ts.values_at_start(np.repeat(opt.policy[None], N, axis=0), np.arange(N))
            det_succ, _ = ts.outcomes(np.repeat(opt.policy[None], N, axis=0), np.arange(N), 100)

            mc_last = [r.last for r in mc[lay]]
            succ, vals = _per_task(mc_last, "success", N), _per_task(mc_last, "value", N)
            obj = np.array([r["objective"] for r in mc_last])
            solved = (succ > SUCCESS).sum(axis=1)
            e = ex[lay].last
            e_succ = [e[f"success_task_{i}"] for i in range(N)]
            results["layouts"][lay] = {
                "label": label,
                "paper": claim,
                "own_optimum": own_opt,
                "bound": opt.bound,
                "best_deterministic": opt.best,
                # any policy's exact value bounds the optimum from below: the best we know
                "best_known": max([opt.best, *obj.tolist(), e["objective"]]),
                "search_complete": opt.complete,
                "best_deterministic_values": det_vals.tolist(),
                "best_deterministic_success": det_succ.tolist(),
                "montecarlo": {
                    "objective": obj.tolist(),
                    "success_mean": succ.mean(axis=0).tolist(),
                    "value_mean": vals.mean(axis=0).tolist(),
                    "value_std": vals.std(axis=0).tolist(),
                    "solved": solved.tolist(),
                    "consensus_error": [r["consensus_error"] for r in mc_last],
                },
                "exact": {
                    "objective": e["objective"],
                    "success": e_succ,
                    "values": [e[f"value_task_{i}"] for i in range(N)],
                    "solved": int(sum(s > SUCCESS for s in e_succ)),
                },
            }
            its = mc[lay][0].column("iteration").astype(int)
            series[f"{lay} montecarlo"] = (its, np.stack([r.column("objective") for r in mc[lay]]))
            series[f"{lay} exact"] = (its, ex[lay].column("objective")[None])
        forms = _closed_forms(CHAIN_GAMMA, CHAIN_P)
        results["chains"] = {}
        for lay in ("chain_reversed", "chain_slip"):
            rs = [r for r in chains if r.config.layout == lay]
            rows = []
            for r in rs:
                v = r.last["objective"]
                name, ref = min(forms[lay].items(), key=lambda kv: abs(kv[1] - v))
                rows.append({"init": r.config.init, "seed": r.config.seed, "objective": v,
                             "point": name, "closed_form": ref, "error": abs(v - ref)})  # fmt: skip
                series[f"{lay} {r.config.init} {r.config.seed}"] = (
                    r.column("iteration").astype(int),
                    r.column("objective")[None],
                )
            results["chains"][lay] = {"closed_forms": forms[lay], "runs": rows}
        write_curves(ctx.out / "curves.csv", series, "std")
        _figure(ctx, mc, ex, results, optima)
        _chain_figure(ctx, chains, forms)
        return results

    @staticmethod
    def headline(results: dict) -> list[tuple[str, str, str]]:
        rows = []
        for r in results["layouts"].values():
            N = len(r["own_optimum"])
            mc, n = r["montecarlo"], len(r["montecarlo"]["solved"])
            best = max(mc["solved"])
            obj = f"{fmt(float(np.mean(mc['objective'])), 3)} +- {fmt(float(np.std(mc['objective'])), 2)}"
            measured = (
                f"MC DCPG: {_count(mc['solved'], N)} of {n} runs solve all {N} tasks (best run {best}/{N}, "
                f"objective {obj}); exact DCPG {r['exact']['solved']}/{N} "
                f"({fmt(r['exact']['objective'], 3)}); "
                f"optimum in [{fmt(r['best_known'], 3)}, {fmt(r['bound'], 3)}]"
            )
            rows.append((f"Fig. 2{r['label'][:3]} {r['label'][4:]}: tasks solved", r["paper"], measured))
        for lay, c in results["chains"].items():
            uni = next(x for x in c["runs"] if x["init"] == "zeros")
            rand = [x["point"] for x in c["runs"] if x["init"] != "zeros"]
            counts = ", ".join(f"{rand.count(p)} at '{p}'" for p in c["closed_forms"] if rand.count(p))
            desc = f"uniform start -> '{uni['point']}'; {len(rand)} N(0, 1) starts -> {counts}"
            rows.append(
                (f"§2.2 {lay}: limit of DCPG", "depends on the start (stationary points)",
                 f"{desc}; max error to the closed form {fmt(max(x['error'] for x in c['runs']))}")
            )  # fmt: skip
        return rows

    @staticmethod
    def table(results: dict) -> tuple[list[str], list[list[str]]]:
        cols = ["layout", "task", "own optimum", "MC DCPG value (mean +- std)", "MC success",
                "exact DCPG value", "exact success", "best det. shared value", "its success"]  # fmt: skip
        rows = []
        for r in results["layouts"].values():
            mc = r["montecarlo"]
            for i in range(len(r["own_optimum"])):
                rows.append(
                    [
                        r["label"] if i == 0 else "",
                        str(i + 1),
                        fmt(r["own_optimum"][i], 3),
                        f"{fmt(mc['value_mean'][i], 3)} +- {fmt(mc['value_std'][i], 2)}",
                        fmt(mc["success_mean"][i], 2),
                        fmt(r["exact"]["values"][i], 3),
                        fmt(r["exact"]["success"][i], 2),
                        fmt(r["best_deterministic_values"][i], 3),
                        fmt(r["best_deterministic_success"][i], 2),
                    ]
                )
            rows.append(
                [
                    "",
                    "sum",
                    fmt(sum(r["own_optimum"]), 3),
                    f"{fmt(float(np.mean(mc['objective'])), 3)} +- {fmt(float(np.std(mc['objective'])), 2)}",
                    "",
                    fmt(r["exact"]["objective"], 3),
                    "",
                    fmt(r["best_deterministic"], 3) + ("" if r["search_complete"] else " (search cut)"),
                    f"bound {fmt(r['bound'], 3)}",
                ]
            )
        return cols, rows


def _per_task(rows: list[dict], key: str, N: int) -> np.ndarray:
    """A per-task metric of every run, shape (R, N)."""
    return np.array([[r[f"{key}_task_{i}"] for i in range(N)] for r in rows])


def _count(solved: list[int], N: int) -> int:
    return int(sum(s == N for s in solved))


# ------------------------------------------------------------------------------ figures
def _draw_layout(ax, tasks, policies, title: str) -> None:
    """Fig. 2's picture: every task in one grid, goals / obstacles numbered, each task's path."""
    from mpg_envs.gridworld.env import most_likely_path

    H, W = tasks[0].shape
    img = np.ones((H, W, 3))
    labels: dict[int, list[str]] = {}
    for i, t in enumerate(tasks):
        for c in t.goals:
            img[divmod(int(c), W)] = (1.0, 0.85, 0.1)
            labels.setdefault(int(c), []).append(f"G{i + 1}")
    for i, t in enumerate(tasks):
        for c in t.obstacles:
            goal_too = any(int(c) in set(map(int, u.goals)) for u in tasks)
            img[divmod(int(c), W)] = (1.0, 0.55, 0.1) if goal_too else (0.85, 0.15, 0.15)
            labels.setdefault(int(c), []).append(f"x{i + 1}")
    ax.imshow(img, extent=(-0.5, W - 0.5, H - 0.5, -0.5))
    for c, txt in labels.items():
        r, q = divmod(c, W)
        ax.text(q, r, "\n".join(txt), ha="center", va="center", fontsize=6, fontweight="bold")
    start = divmod(int(np.argmax(tasks[0].start)), W)
    ax.plot(start[1], start[0], "s", color="k", ms=5)
    for i, (t, pi) in enumerate(zip(tasks, policies)):
        path = most_likely_path(t, pi, max_len=100)
        rc = np.array([divmod(c, W) for c in path], float) + (i - len(tasks) / 2) * 0.06
        ax.plot(rc[:, 1], rc[:, 0], "-", color=f"C{i}", lw=1.4, alpha=0.9)
        end = path[-1]
        mark = "*" if end in set(map(int, t.goals)) else ("x" if end in set(map(int, t.obstacles)) else "o")
        ax.plot(rc[-1, 1], rc[-1, 0], mark, color=f"C{i}", ms=7)
    ax.set_xticks(np.arange(-0.5, W), minor=True)
    ax.set_yticks(np.arange(-0.5, H), minor=True)
    ax.grid(which="minor", color="0.8", lw=0.5)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=8)


def _figure(ctx: Context, mc, ex, results, optima) -> None:
    pyplot = plt()
    if pyplot is None:
        return
    from mpg_envs.gridworld.env import MultiTaskGridWorldEnv

    fig, axes = pyplot.subplots(4, 5, figsize=(17, 14))
    for k, lay in enumerate(LAYOUTS):
        env = MultiTaskGridWorldEnv(layout=lay, gamma=GAMMA)
        r = results["layouts"][lay]
        run0 = mc[lay][0]
        pols = np.load(run0.run_dir / "final.npz")["policies"]
        solved = r["montecarlo"]["solved"][0]
        _draw_layout(
            axes[0, k],
            env.tasks,
            pols,
            f"{r['label']}: MC DCPG, seed {run0.config.seed} ({solved}/{len(pols)} solved)",
        )
        pe = np.load(ex[lay].run_dir / "final.npz")["policies"]
        _draw_layout(axes[1, k], env.tasks, pe, f"exact DCPG ({r['exact']['solved']}/{len(pe)} solved)")
        N = len(env.tasks)
        _draw_layout(
            axes[2, k],
            env.tasks,
            [optima[lay]] * N,
            f"best deterministic shared policy ({fmt(r['best_deterministic'], 3)})",
        )
        ax = axes[3, k]
        its = run0.column("iteration")
        Y = np.stack([x.column("objective") for x in mc[lay]])
        ax.plot(its, Y.mean(axis=0), color="C0", label=f"MC DCPG (mean of {len(Y)})")
        ax.fill_between(its, Y.min(axis=0), Y.max(axis=0), color="C0", alpha=0.2, label="MC min-max")
        ax.plot(its, ex[lay].column("objective"), color="C3", label="exact DCPG")
        ax.axhline(r["bound"], color="k", ls="--", lw=1, label="upper bound")
        ax.axhline(r["best_deterministic"], color="k", ls=":", lw=1, label="best deterministic")
        ax.set(xlabel="iteration", ylabel="sum_i V_i(rho_i)" if k == 0 else None)
        if k == 0:
            ax.legend(fontsize=7)
    fig.suptitle(
        f"Paper 004 Fig. 2 (our layouts): averaged policy's most likely path per task (colour = task; "
        f"* goal, x obstacle), alpha = {ALPHA:g}, lambda = {LAM:g}, {results['iters']} iterations",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(ctx.out / "zeng2021_gridworld.png", dpi=110)
    pyplot.close(fig)


def _chain_figure(ctx: Context, chains, forms) -> None:
    pyplot = plt()
    if pyplot is None:
        return
    fig, axes = pyplot.subplots(1, 2, figsize=(10, 3.8))
    for ax, lay in zip(axes, ("chain_reversed", "chain_slip")):
        for r in (r for r in chains if r.config.layout == lay):
            style = (
                dict(color="C3", lw=2, label="uniform start")
                if r.config.init == "zeros"
                else dict(color="C0", lw=0.8, alpha=0.6)
            )
            ax.plot(r.column("iteration"), r.column("objective"), **style)
        for k, (name, v) in enumerate(forms[lay].items()):
            ax.axhline(v, color="k", ls=["--", ":"][k], lw=1, label=f"{name}: {v:.4f}")
        ax.set_xscale("symlog", linthresh=10)
        ax.set(title=f"{lay} (gamma = sqrt(1/2), p = {CHAIN_P})", xlabel="iteration", ylabel="V_1 + V_2")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(ctx.out / "zeng2021_chains.png", dpi=110)
    pyplot.close(fig)


# ------------------------------------------------------------------------------ graph study
GRAPH_STUDY = ("complete", "star", "ring", "path")
GRAPH_LAYOUT = "start_top_right"


class Graphs:
    """``zeng2021-graphs``: iterations to a multi-task objective against the spectral gap."""

    NAME = "zeng2021-graphs"
    TITLE = "Paper 004, communication graphs and Theorem 1's spectral gap"
    PAPER = "Zeng et al. 2021, Theorem 1"
    DESCRIPTION = (
        f"DCPG on the six tasks of `{GRAPH_LAYOUT}` over the complete graph, a star, the ring and a path "
        f"(lazy Metropolis weights), alpha = {ALPHA:g}, lambda = {LAM:g}, 2000 iterations, exact local "
        "gradients (one deterministic run per graph) and Monte Carlo ones (10 seeds). Theorem 1 bounds the "
        "stationarity reached after k iterations by a constant growing like 1 / (1 - sigma_2)^2. Measured: "
        "the first iteration from which the averaged policy's objective stays at or above 90% of the "
        "complete graph's final objective (exact; Monte Carlo: the median over seeds of the first "
        "iteration at 90% of the complete graph's mean final objective), the final consensus error and "
        "stationarity."
    )

    @staticmethod
    def run(ctx: Context) -> dict:
        from baselines.consensus.graphs import Topology

        seeds = ctx.seed_list(10, 2)
        iters = 2000 if ctx.full else 300
        runs_out = str(ctx.out / "runs")
        base = replace(_base(GRAPH_LAYOUT, runs_out, iters), eval_every=10, eval_log=False)
        ex_cfgs = [replace(base, graph=g, gradient="exact") for g in GRAPH_STUDY]
        mc_cfgs = [replace(base, graph=g, seed=s) for g in GRAPH_STUDY for s in seeds]
        runs = run_dcpg_grid(Graphs.NAME, ex_cfgs + mc_cfgs, ctx)
        ex = dict(zip(GRAPH_STUDY, runs[: len(ex_cfgs)]))
        mc = {
            g: runs[len(ex_cfgs) + k * len(seeds) : len(ex_cfgs) + (k + 1) * len(seeds)]
            for k, g in enumerate(GRAPH_STUDY)
        }
        target_ex = 0.9 * ex["complete"].last["objective"]
        target_mc = 0.9 * float(np.mean([r.last["objective"] for r in mc["complete"]]))
        out: dict = {
            "iters": iters,
            "layout": GRAPH_LAYOUT,
            "target_exact": target_ex,
            "target_mc": target_mc,
            "graphs": {},
        }
        series = {}
        for g in GRAPH_STUDY:
            spec = Topology.make(g, 6, weights="lazy_metropolis").spectrum
            its = ex[g].column("iteration").astype(int)
            to_ex = first_from(ex[g].column("objective") >= target_ex, its)
            to_mc = [first_from(r.column("objective") >= target_mc, its) for r in mc[g]]
            reached = [t for t in to_mc if t is not None]
            out["graphs"][g] = {
                "sigma_2": spec.sigma_2,
                "gap": spec.gap,
                "theorem_constant": 1.0 / spec.gap**2,
                "exact_iterations": to_ex,
                "exact_objective": ex[g].last["objective"],
                "exact_consensus_error": ex[g].last["consensus_error"],
                "exact_stationarity": ex[g].last["stationarity"],
                "mc_iterations": to_mc,
                "mc_median_iterations": float(np.median(reached)) if len(reached) > len(to_mc) / 2 else None,
                "mc_objective": [r.last["objective"] for r in mc[g]],
                "mc_consensus_error": [r.last["consensus_error"] for r in mc[g]],
            }
            series[f"{g} exact"] = (its, ex[g].column("objective")[None])
            series[f"{g} montecarlo"] = (its, np.stack([r.column("objective") for r in mc[g]]))
        write_curves(ctx.out / "curves.csv", series, "std")
        _graph_figure(ctx, ex, mc, out)
        return out

    @staticmethod
    def headline(results: dict) -> list[tuple[str, str, str]]:
        gs = results["graphs"]
        parts = [
            f"{g} (1/gap^2 = {fmt(r['theorem_constant'], 3)}): exact {_its(r['exact_iterations'])}, "
            f"MC median {fmt(r['mc_median_iterations'], 3)}"
            for g, r in gs.items()
        ]
        return [("Theorem 1: iterations to 90% of the complete graph's objective, 6 tasks",
                 "grows like 1 / (1 - sigma_2)^2", "; ".join(parts))]  # fmt: skip

    @staticmethod
    def table(results: dict) -> tuple[list[str], list[list[str]]]:
        cols = ["graph", "sigma_2", "1/(1-sigma_2)^2", "exact: iterations", "exact: objective",
                "exact: consensus error", "exact: stationarity", "MC: median iterations (reached/runs)",
                "MC: objective (mean +- std)", "MC: consensus error (mean)"]  # fmt: skip
        rows = []
        for g, r in results["graphs"].items():
            reached = sum(t is not None for t in r["mc_iterations"])
            rows.append([
                g, fmt(r["sigma_2"], 3), fmt(r["theorem_constant"], 3),
                _its(r["exact_iterations"]),
                fmt(r["exact_objective"], 3), fmt(r["exact_consensus_error"]), fmt(r["exact_stationarity"]),
                f"{fmt(r['mc_median_iterations'], 3)} ({reached}/{len(r['mc_iterations'])})",
                f"{fmt(float(np.mean(r['mc_objective'])), 3)} +- {fmt(float(np.std(r['mc_objective'])), 2)}",
                fmt(float(np.mean(r["mc_consensus_error"]))),
            ])  # fmt: skip
        return cols, rows


def _its(k: int | None) -> str:
    return "never" if k is None else str(k)


def _graph_figure(ctx: Context, ex, mc, out) -> None:
    pyplot = plt()
    if pyplot is None:
        return
    fig, axes = pyplot.subplots(1, 3, figsize=(15, 4))
    for k, g in enumerate(GRAPH_STUDY):
        its = ex[g].column("iteration")
        axes[0].plot(its, ex[g].column("objective"), color=f"C{k}", label=f"{g} exact")
        Y = np.stack([r.column("objective") for r in mc[g]])
        axes[0].plot(its, Y.mean(axis=0), color=f"C{k}", ls="--", lw=1, label=f"{g} MC mean")
        axes[1].semilogy(its[1:], ex[g].column("consensus_error")[1:], color=f"C{k}", label=g)
        r = out["graphs"][g]
        if r["exact_iterations"] is not None:
            axes[2].plot(r["theorem_constant"], r["exact_iterations"], "o", color=f"C{k}", label=f"{g} exact")
        if r["mc_median_iterations"] is not None:
            axes[2].plot(
                r["theorem_constant"],
                r["mc_median_iterations"],
                "s",
                mfc="none",
                color=f"C{k}",
                label=f"{g} MC median",
            )
    axes[0].axhline(out["target_exact"], color="k", ls=":", lw=1, label="target (exact)")
    axes[0].set(xlabel="iteration", ylabel="sum_i V_i(rho_i) of the average")
    axes[0].legend(fontsize=6, ncol=2)
    axes[1].set(xlabel="iteration", ylabel="consensus error (exact gradients)")
    axes[1].legend(fontsize=7)
    axes[2].set_xscale("log")
    axes[2].set(xlabel="1 / (1 - sigma_2)^2 (Theorem 1's constant)", ylabel="iterations to 90% of complete")
    axes[2].legend(fontsize=6)
    fig.suptitle(f"Paper 004 Theorem 1: six tasks of {GRAPH_LAYOUT}, lazy Metropolis weights", fontsize=10)
    fig.tight_layout()
    fig.savefig(ctx.out / "zeng2021_graphs.png", dpi=110)
    pyplot.close(fig)
