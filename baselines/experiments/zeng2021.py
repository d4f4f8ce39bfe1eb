"""Paper 004 (Zeng et al., *A Decentralized Policy Gradient Approach to Multi-Task RL*) §5.1 Fig. 2
and §2.2's chains: tabular DCPG on multi-task GridWorlds.

**The paper's protocol, as far as it is stated**: Algorithm 1 with Monte Carlo local gradients
(one episode per agent per iteration, our REINFORCE with every-visit returns, at most 100 steps),
a ring with lazy Metropolis weights, 1000 training episodes, then the averaged policy tested in
every task. The paper gives no step size, regulariser weight, discount, start distribution mu or
number of runs, and no code of its own is public. We use gamma = 0.95, a uniform initial policy,
and the step size and lambda chosen by a search over alpha in {1, 3, 10, 30} x lambda in {0, 0.01,
0.1} on seeds 100-102 (never reported), one pair for all five layouts (the best total objective):
alpha = 3, lambda = 0.01 (the table is in ``SEARCH``; its runs took 9 minutes). Since mu is not
stated, every layout is trained under both readings -- mu = the layout's start cell and mu =
uniform over the free cells -- and tested from the start cell (what Fig. 2 draws). The layouts are
our reconstruction of Fig. 2, whose picture is not in the paper's text.

**Beside it**: the same DCPG with exact local gradients (deterministic: one run per layout and mu).

**Oracles**: each task's own optimum (value iteration) and brackets of the centralised optimum of
``sum_i V_i`` over shared policies (:func:`~baselines.consensus.objective.shared_optimum`): the
best deterministic shared policy (exact, by branch and bound) and an upper bound over policies that
also see which tasks still run.

**Chains** (§2.2): exact-gradient DCPG on both 2-task chains with gamma = sqrt(1/2) (the paper's
specialisation) and p = 0.75, from the uniform start and from 30 N(0, 1) starts, with eq. (9) at
several step sizes, with combine-then-adapt (``gradient_at="mixed"``) and with centralised gradient
ascent; each run's limit is matched to the closest closed-form stationary point, and the agents' own
policies in S3 and their consensus error say whether they agree there. For two agents the ring's
lazy Metropolis weights are ``W = 11^T / 2``, and Theorem 1's step-size bound (eq. 10) is
``(1 + sigma_N) / (2 * 16 / (1 - gamma)^3) = 7.9e-4``.

Every aggregate of the summary is re-derived from its per-run records by :meth:`GridWorld.rederive`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from baselines.consensus.dcpg import DCPGConfig
from baselines.consensus.objective import TaskSet, shared_optimum, softmax_logits
from baselines.experiments.common import Context, first_from, fmt, plt, write_curves
from baselines.experiments.dcpg_grid import run_dcpg_grid
from baselines.experiments.stats import fmt_fraction, fraction, mean_se

__all__ = ["GridWorld", "Graphs", "SEARCH", "theorem1_alpha_bound"]

LAYOUTS = {
    "no_conflict": ("(a) no conflict", "every goal found"),
    "resolvable_conflict": ("(b) resolvable conflict", "every goal found"),
    "unresolvable_conflict": ("(c) unresolvable conflict", "3 of 4 goals (a compromise)"),
    "start_top_left": ("(d) start top left", "not optimal"),
    "start_top_right": ("(e) start top right", "optimal"),
}
#: The two readings of the unstated start distribution mu (training); tests start in the start cell.
STARTS = {"task": "mu = start cell", "uniform": "mu = uniform"}
GAMMA = 0.95
ALPHA, LAM = 3.0, 0.01
#: The step-size search (seeds 100-102, 1000 iterations, mu = start cell): (alpha, lambda) -> mean
#: final objective summed over the five layouts. Regenerate with ``SEARCH_GRID`` and :func:`search`.
SEARCH = {
    (1, 0): 3.091,
    (1, 0.01): 3.51,
    (1, 0.1): 2.73,
    (3, 0): 4.484,
    (3, 0.01): 5.651,
    (3, 0.1): 3.812,
    (10, 0): 4.077,
    (10, 0.01): 4.369,
    (10, 0.1): 4.635,
    (30, 0): 1.693,
    (30, 0.01): 3.035,
    (30, 0.1): 2.412,
}
SEARCH_GRID = ((1, 3, 10, 30), (0, 0.01, 0.1), (100, 101, 102))
CHAIN_GAMMA, CHAIN_P = math.sqrt(0.5), 0.75
CHAINS = ("chain_reversed", "chain_slip")
#: Step sizes of eq. (9) on the chains; every run covers the same ``alpha * iterations``.
CHAIN_ALPHAS = (0.25, 0.5, 0.75, 1.0, 2.0)
#: The step size of the published chain runs and of the variants beside eq. (9).
CHAIN_ALPHA = 2.0
CHAIN_TIME = {True: 4000.0, False: 1000.0}  # alpha * iterations (full, short)
#: Agents whose parameters differ by more than this (max_i ||theta_i - mean||) disagree.
CONSENSUS_TOL = 1e-2
VARIANTS = {
    "eq9": "eq. (9) (adapt at own theta_i)",
    "mixed": "combine-then-adapt",
    "centralised": "centralised ascent",
}


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
            "uniform in S3 (the minimum along S3)": g * (2 - 4 * p) / (2 - g**2),
        },
    }


def theorem1_alpha_bound(gammas, lam: float, n_states: int, sigma_n: float) -> float:
    """Theorem 1's step-size bound, paper 004 eq. (10):
    ``(1 + sigma_N) / (sum_i 16 / (1 - gamma_i)^3 + 4 N lambda / |S|)``.

    Args:
        gammas: Each task's discount, shape (N,).
        lam: The regulariser weight lambda.
        n_states: |S|.
        sigma_n: The smallest singular value of W.
    """
    g = np.asarray(gammas, dtype=float)
    return float((1.0 + sigma_n) / (np.sum(16.0 / (1.0 - g) ** 3) + 4.0 * len(g) * lam / n_states))


def _chain_iters(alpha: float, full: bool) -> int:
    return int(round(CHAIN_TIME[full] / alpha))


def _chain_cfg(
    lay: str, variant: str, alpha: float, init: str, seed: int, full: bool, out: str
) -> DCPGConfig:
    k = _chain_iters(alpha, full)
    return DCPGConfig(
        layout=lay,
        gamma=CHAIN_GAMMA,
        chain_p=CHAIN_P,
        gradient="exact",
        alpha=alpha,
        gradient_at="mixed" if variant == "mixed" else "own",
        init=init,
        seed=seed,
        iters=k,
        eval_every=max(k // 40, 1),
        checkpoint_every=max(k // 4, 100),
        out=out,
    )


def _centralised(lay: str, alpha: float, starts: list[tuple[str, int]], iters: int) -> list[dict]:
    """Centralised gradient ascent ``theta += alpha / N sum_i grad V_i(rho_i)`` on one shared policy,
    every start at once (the average iterate of combine-then-adapt when ``W = 11^T / N``)."""
    from baselines.consensus.policies import Tabular
    from mpg_envs.gridworld.env import MultiTaskGridWorldEnv

    env = MultiTaskGridWorldEnv(layout=lay, gamma=CHAIN_GAMMA, chain_p=CHAIN_P)
    ts = TaskSet.from_env(env)
    N, S, A = ts.n_tasks, ts.n_states, ts.n_actions
    tab = Tabular(S, A)
    theta = np.stack([tab.initial(init, seed) for init, seed in starts])  # (R, S, A)
    R = len(theta)
    tasks = np.tile(np.arange(N), R)
    for _ in range(iters):
        G, _ = ts.gradient(np.repeat(theta, N, axis=0), tasks)
        theta = theta + alpha * G.reshape(R, N, S, A).mean(axis=1)
    G, _ = ts.gradient(np.repeat(theta, N, axis=0), tasks)
    station = np.linalg.norm(G.reshape(R, N, -1).mean(axis=1), axis=1)
    pi = softmax_logits(theta)
    obj = ts.objective(pi)
    s3 = int(np.argmax(ts.rho[0]))
    return [
        {
            "variant": "centralised",
            "alpha": alpha,
            "iters": iters,
            "init": init,
            "seed": seed,
            "objective": float(obj[r]),
            "objective_agents": [float(obj[r])] * N,
            "consensus_error": 0.0,
            "stationarity": float(station[r]),
            "pi_L_S3": [float(pi[r, s3, 0])] * N,
            "pi_L_S3_average": float(pi[r, s3, 0]),
        }
        for r, (init, seed) in enumerate(starts)
    ]


def _s3_profile(lay: str, points: int = 101) -> dict:
    """The objective of the chain_slip policies ``pi(L | S3) = x`` (its moves in S2/S4 do not depend
    on the action, so the objective depends on the S3 row only): where it is lowest and highest."""
    from mpg_envs.gridworld.env import MultiTaskGridWorldEnv

    env = MultiTaskGridWorldEnv(layout=lay, gamma=CHAIN_GAMMA, chain_p=CHAIN_P)
    ts = TaskSet.from_env(env)
    s3 = int(np.argmax(ts.rho[0]))
    x = np.linspace(0.0, 1.0, points)
    pi = np.full((points, ts.n_states, ts.n_actions), 1.0 / ts.n_actions)
    pi[:, s3, 0], pi[:, s3, 1] = x, 1.0 - x
    return {"x": x.tolist(), "objective": ts.objective(pi).tolist()}


def _chain_record(r) -> dict:
    """A chain run's per-run record: limit, each agent's own policy in S3, consensus error."""
    pis = softmax_logits(r.thetas)  # (N, S, A)
    avg = softmax_logits(r.thetas.mean(axis=0))
    s3 = 2  # S_3, the chains' start (actions 0 = L, 1 = R)
    last = r.last
    N = len(r.thetas)
    return {
        "variant": "mixed" if r.config.gradient_at == "mixed" else "eq9",
        "alpha": r.config.alpha,
        "iters": r.config.iters,
        "init": r.config.init,
        "seed": r.config.seed,
        "objective": last["objective"],
        "objective_agents": [last[f"objective_agent_{j}"] for j in range(N)],
        "consensus_error": last["consensus_error"],
        "stationarity": last["stationarity"],
        "pi_L_S3": pis[:, s3, 0].tolist(),
        "pi_L_S3_average": float(avg[s3, 0]),
    }


def _limit(rec: dict, forms: dict[str, float]) -> tuple[str, float, bool]:
    """(closest closed-form point of the averaged policy, its distance, whether the agents agree)."""
    name, ref = min(forms.items(), key=lambda kv: abs(kv[1] - rec["objective"]))
    return name, abs(rec["objective"] - ref), rec["consensus_error"] < CONSENSUS_TOL


def _limit_label(point: str, agree: bool) -> str:
    return point if agree else f"{point}, agents disagree"


def _ls(x) -> list:
    return [float(v) for v in x]


class GridWorld:
    """``zeng2021-gridworld``: paper 004 Fig. 2 (a)-(e) and §2.2's chains."""

    NAME = "zeng2021-gridworld"
    TITLE = "Paper 004, multi-task GridWorld (Fig. 2) and the §2.2 chains"
    PAPER = "Zeng et al. 2021, §5.1 and §2.2"
    DESCRIPTION = (
        "Tabular DCPG, Monte Carlo local gradients (one 100-step episode per agent per iteration), ring "
        "with lazy Metropolis weights, 1000 iterations, gamma = 0.95, uniform initial policy, "
        f"alpha = {ALPHA:g}, lambda = {LAM:g} (searched over alpha in {{1, 3, 10, 30}} x lambda in "
        "{0, 0.01, 0.1} on seeds 100-102 with mu = the start cell, one pair for all layouts and both mu: "
        "the paper gives neither), 30 seeds (0-29); beside it the same with exact local gradients. "
        "**The paper does not state the start distribution mu** of training: every layout is trained "
        "under both readings, mu = the layout's start cell and mu = uniform over the free cells, and the "
        "averaged policy is tested from the start cell (what Fig. 2 draws). Per task: the probability "
        "of reaching its goal within 100 steps (exact, from the model), mean +- standard error over "
        "seeds; their sum is the expected number of goals reached. No threshold: a task reached with "
        "probability 0.53 counts 0.53. The objective sum_i V_i(start) is compared with the centralised "
        "optimum's brackets (best known shared policy -- the best deterministic one, exact by branch "
        "and bound, or a better trained run; upper bound over policies that also see which tasks still "
        "run). Our 10x10 layouts reconstruct Fig. 2, whose picture is not in the paper's text. In "
        "layout (c) a conflicting cell pays +1 to one task and -1 to the other on the same step, so "
        "collecting 3 of the 4 goals is worth exactly as much as collecting 2. "
        "**Chains**: exact DCPG, gamma = sqrt(1/2), p = 0.75, from the uniform start and 30 N(0, 1) "
        f"starts (seeds 0-29), eq. (9) with alpha in {{{', '.join(f'{a:g}' for a in CHAIN_ALPHAS)}}} "
        f"({CHAIN_TIME[True]:g} / alpha iterations each), combine-then-adapt (the local gradient taken "
        f"at the mixed point) and centralised gradient ascent on (V_1 + V_2) / 2, both at alpha = "
        f"{CHAIN_ALPHA:g}. Each run's limit: the closed-form stationary point closest to the averaged "
        "policy's objective, and whether the agents agree (consensus error max_i ||theta_i - mean|| "
        f"below {CONSENSUS_TOL:g}); pi_i(L|S3) is agent i's own policy in S3. With two agents the "
        "ring's lazy Metropolis weights are W = 11^T / 2 (sigma_2 = sigma_N = 0), so Theorem 1's bound "
        "(eq. 10) is alpha < 1 / (2 * 16 / (1 - gamma)^3) = 7.9e-4. On chain_slip the objective of "
        "pi(L|S3) = x is lowest at x = 0.5: where eq. (9) stops with disagreeing agents, only their "
        "average is uniform. From the uniform start the two tasks' gradients in S3 are exactly opposite, "
        "so under eq. (9) the average stays uniform at every alpha while the agents drift apart; "
        "combine-then-adapt and centralised ascent sit there too (the gradient of the sum is 0) and leave "
        "only because round-off grows on this unstable point. On chain_reversed the global max is "
        "interior: each task's gradient is non-zero there, so the agents of eq. (9) stay apart by O(alpha) "
        "(consensus error 0.054 at alpha = 0.25, 0.36 at 2); two N(0, 1) starts (seeds 2 and 25) end at "
        "'deterministic in S3', a local maximum, under every update, centralised ascent included (eq. (9) "
        "at alpha = 2 frees seed 25): the paper's trapping at a stationary point that depends on the start."
    )

    @staticmethod
    def run(ctx: Context) -> dict:
        from baselines.consensus.graphs import Topology
        from mpg_envs.gridworld.env import MultiTaskGridWorldEnv

        seeds = ctx.seed_list(30, 2)
        iters = 1000 if ctx.full else 300
        runs_out = str(ctx.out / "runs")
        mc_cfgs = [
            replace(_base(lay, runs_out, iters), seed=s, train_start=mu)
            for lay in LAYOUTS
            for mu in STARTS
            for s in seeds
        ]
        ex_cfgs = [
            replace(_base(lay, runs_out, iters), gradient="exact", train_start=mu)
            for lay in LAYOUTS
            for mu in STARTS
        ]
        chain_starts = [("zeros", 0)] + [("normal", s) for s in seeds]
        chain_cfgs = [
            _chain_cfg(lay, variant, a, init, s, ctx.full, runs_out)
            for lay in CHAINS
            for variant, a in [("eq9", a) for a in CHAIN_ALPHAS] + [("mixed", CHAIN_ALPHA)]
            for init, s in chain_starts
        ]
        runs = run_dcpg_grid(GridWorld.NAME, mc_cfgs + ex_cfgs + chain_cfgs, ctx)
        n_mc, n_ex = len(mc_cfgs), len(ex_cfgs)
        mc = {
            (lay, mu): runs[k * len(seeds) : (k + 1) * len(seeds)]
            for k, (lay, mu) in enumerate((lay, mu) for lay in LAYOUTS for mu in STARTS)
        }
        ex = dict(zip(((lay, mu) for lay in LAYOUTS for mu in STARTS), runs[n_mc : n_mc + n_ex]))
        chains = runs[n_mc + n_ex :]

        layouts: dict = {}
        optima = {}
        series = {}
        for lay, (label, claim) in LAYOUTS.items():
            env = MultiTaskGridWorldEnv(layout=lay, gamma=GAMMA)
            ts = TaskSet.from_env(env)
            N = len(env.tasks)
            opt = shared_optimum(env.tasks, GAMMA, max_nodes=2_000_000 if ctx.full else 100_000)
            optima[lay] = opt.policy
            det_vals = ts.values_at_start(np.repeat(opt.policy[None], N, axis=0), np.arange(N))
            det_succ, _ = ts.outcomes(np.repeat(opt.policy[None], N, axis=0), np.arange(N), 100)
            rec = {
                "label": label,
                "paper": claim,
                "own_optimum": [shared_optimum([t], GAMMA).bound for t in env.tasks],
                "bound": opt.bound,
                "best_deterministic": opt.best,
                "search_complete": opt.complete,
                "best_deterministic_values": det_vals.tolist(),
                "best_deterministic_success": det_succ.tolist(),
                "runs": {},
            }
            for mu in STARTS:
                rec["runs"][mu] = {
                    "montecarlo": [
                        {
                            "seed": r.config.seed,
                            "objective": r.last["objective"],
                            "values": [r.last[f"value_task_{i}"] for i in range(N)],
                            "success": [r.last[f"success_task_{i}"] for i in range(N)],
                            "consensus_error": r.last["consensus_error"],
                        }
                        for r in mc[lay, mu]
                    ],
                    "exact": {
                        "objective": ex[lay, mu].last["objective"],
                        "values": [ex[lay, mu].last[f"value_task_{i}"] for i in range(N)],
                        "success": [ex[lay, mu].last[f"success_task_{i}"] for i in range(N)],
                        "consensus_error": ex[lay, mu].last["consensus_error"],
                    },
                }
                its = mc[lay, mu][0].column("iteration").astype(int)
                series[f"{lay} {mu} montecarlo"] = (
                    its,
                    np.stack([r.column("objective") for r in mc[lay, mu]]),
                )
                series[f"{lay} {mu} exact"] = (its, ex[lay, mu].column("objective")[None])
            layouts[lay] = rec

        chain_out: dict = {}
        for lay in CHAINS:
            rs = [r for r in chains if r.config.layout == lay]
            records = [_chain_record(r) for r in rs]
            k_c = _chain_iters(CHAIN_ALPHA, ctx.full)
            k_c = k_c if ctx.max_iters is None else min(k_c, ctx.max_iters)  # capped like every run
            records += _centralised(lay, CHAIN_ALPHA, chain_starts, k_c)
            topo = Topology.make("ring", 2, weights="lazy_metropolis")
            chain_out[lay] = {
                "gammas": [CHAIN_GAMMA, CHAIN_GAMMA],
                "n_states": int(rs[0].thetas.shape[1]),
                "sigma_n": topo.spectrum.sigma_n,
                "sigma_2": topo.spectrum.sigma_2,
                "runs": records,
            }
            if lay == "chain_slip":
                chain_out[lay]["s3_profile"] = _s3_profile(lay)
            for r in rs:
                how = "mixed" if r.config.gradient_at == "mixed" else "eq9"
                tag = f"{lay} {how} alpha={r.config.alpha:g} {r.config.init} {r.config.seed}"
                series[tag] = (r.column("iteration").astype(int), r.column("objective")[None])
        results = GridWorld.rederive(
            {
                "alpha": ALPHA,
                "lam": LAM,
                "iters": iters,
                "seeds": seeds,
                "layouts": layouts,
                "chains": chain_out,
            }
        )
        write_curves(ctx.out / "curves.csv", series, "std")
        _write_chain_csv(ctx.out / "chains.csv", results)
        _figure(ctx, mc, ex, results, optima)
        _chain_figure(ctx, chains, results)
        return results

    @staticmethod
    def rederive(results: dict) -> dict:
        """Every aggregate of a summary from its per-run records (and the oracles it stores)."""
        out = {k: results[k] for k in ("alpha", "lam", "iters", "seeds")}
        out["layouts"] = {}
        for lay, r in results["layouts"].items():
            keep = (
                "label",
                "paper",
                "own_optimum",
                "bound",
                "best_deterministic",
                "search_complete",
                "best_deterministic_values",
                "best_deterministic_success",
                "runs",
            )
            rec = {k: r[k] for k in keep}
            objs = [r["best_deterministic"]] if r["best_deterministic"] is not None else []
            summ = {}
            for mu, rr in r["runs"].items():
                succ = np.array([x["success"] for x in rr["montecarlo"]])  # (R, N)
                vals = np.array([x["values"] for x in rr["montecarlo"]])
                obj = [x["objective"] for x in rr["montecarlo"]]
                objs += obj + [rr["exact"]["objective"]]
                goals = succ.sum(axis=1)
                ms = [mean_se(succ[:, i]) for i in range(succ.shape[1])]
                mv = [mean_se(vals[:, i]) for i in range(vals.shape[1])]
                order = np.argsort(obj, kind="stable")
                (g_mean, g_se), (o_mean, o_se) = mean_se(goals), mean_se(obj)
                summ[mu] = {
                    "montecarlo": {
                        "n": len(obj),
                        "success_mean": [m for m, _ in ms],
                        "success_se": [s for _, s in ms],
                        "value_mean": [m for m, _ in mv],
                        "value_se": [s for _, s in mv],
                        "goals_mean": g_mean,
                        "goals_se": g_se,
                        "objective_mean": o_mean,
                        "objective_se": o_se,
                        "median_seed": rr["montecarlo"][int(order[(len(obj) - 1) // 2])]["seed"],
                        "consensus_error_mean": mean_se([x["consensus_error"] for x in rr["montecarlo"]])[0],
                    },
                    "exact": {"goals": float(np.sum(rr["exact"]["success"]))},
                }
            rec["best_known"] = float(max(objs))
            rec["summary"] = summ
            out["layouts"][lay] = rec
        forms = _closed_forms(CHAIN_GAMMA, CHAIN_P)
        out["chains"] = {}
        for lay, c in results["chains"].items():
            rec = {k: c[k] for k in ("gammas", "n_states", "sigma_n", "sigma_2", "runs")}
            rec["closed_forms"] = forms[lay]
            rec["theorem1_alpha_bound"] = theorem1_alpha_bound(c["gammas"], 0.0, c["n_states"], c["sigma_n"])
            if "s3_profile" in c:
                rec["s3_profile"] = c["s3_profile"]
                y = np.asarray(c["s3_profile"]["objective"])
                x = c["s3_profile"]["x"]
                rec["s3_profile_argmin"] = float(x[int(np.argmin(y))])
                rec["s3_profile_argmax"] = [float(x[i]) for i in np.flatnonzero(y >= y.max() - 1e-12)]
            groups: dict = {}
            for x in c["runs"]:
                groups.setdefault((x["variant"], x["alpha"]), []).append(x)
            global_max = next(k for k in forms[lay] if "global max" in k)
            rec["groups"] = []
            for (variant, alpha), xs in sorted(
                groups.items(), key=lambda kv: (list(VARIANTS).index(kv[0][0]), kv[0][1])
            ):
                lim = [_limit(x, forms[lay]) for x in xs]
                labels = [_limit_label(p, agree) for p, _, agree in lim]
                rand = [(x, lab, li) for x, lab, li in zip(xs, labels, lim) if x["init"] != "zeros"]
                uni = [lab for x, lab in zip(xs, labels) if x["init"] == "zeros"]
                dis = [x for x, _, li in rand if not li[2]]
                counts: dict[str, int] = {}
                for _, lab, _ in rand:
                    counts[lab] = counts.get(lab, 0) + 1
                rec["groups"].append(
                    {
                        "variant": variant,
                        "alpha": alpha,
                        "iters": xs[0]["iters"],
                        "uniform_start": uni[0] if uni else None,
                        "counts": counts,
                        "global_max": fraction([li[0] == global_max for _, _, li in rand]) if rand else None,
                        "max_error": float(max(e for _, e, _ in lim)),
                        "disagreeing": len(dis),
                        "disagreeing_consensus_error": [
                            float(min(x["consensus_error"] for x in dis)),
                            float(max(x["consensus_error"] for x in dis)),
                        ]
                        if dis
                        else None,
                        "disagreeing_pi_L_S3": [
                            float(min(min(x["pi_L_S3"]) for x in dis)),
                            float(max(max(x["pi_L_S3"]) for x in dis)),
                        ]
                        if dis
                        else None,
                    }
                )
            out["chains"][lay] = rec
        return out

    @staticmethod
    def headline(results: dict) -> list[tuple[str, str, str]]:
        rows = []
        for r in results["layouts"].values():
            N = len(r["own_optimum"])
            parts = []
            for mu, s in r["summary"].items():
                m = s["montecarlo"]
                parts.append(
                    f"{STARTS[mu]}: MC DCPG {fmt(m['goals_mean'], 2)} +- {fmt(m['goals_se'], 1)} "
                    f"(mean +- SE, {m['n']} seeds), exact DCPG {fmt(s['exact']['goals'], 2)}"
                )
            opt = f"best deterministic shared policy {fmt(float(np.sum(r['best_deterministic_success'])), 2)}"
            rows.append(
                (
                    f"Fig. 2{r['label'][:3]} {r['label'][4:]}: expected goals reached (of {N})",
                    r["paper"],
                    "; ".join(parts) + f"; {opt}",
                )
            )
        for lay, c in results["chains"].items():
            g = {(x["variant"], x["alpha"]): x for x in c["groups"]}
            main = g[("eq9", CHAIN_ALPHA)]
            counts = "; ".join(f"{k} x {p}" for p, k in main["counts"].items())
            n = sum(main["counts"].values())
            dis = ""
            if main["disagreeing"]:
                lo, hi = main["disagreeing_pi_L_S3"]
                ce = main["disagreeing_consensus_error"]
                dis = (
                    f"; where they disagree pi_1(L|S3), pi_2(L|S3) in {{{fmt(lo, 3)}, {fmt(hi, 3)}}}, "
                    f"consensus error {fmt(ce[1], 2)}"
                )
            rows.append(
                (
                    f"§2.2 {lay}: limit of eq. (9), alpha = {CHAIN_ALPHA:g}",
                    "depends on the start (stationary points)",
                    f"uniform start -> {main['uniform_start']}; {n} N(0, 1) starts -> {counts}{dis}",
                )
            )
            sweep = "; ".join(
                f"alpha = {x['alpha']:g}: {fmt_fraction(x['global_max'])}"
                for x in c["groups"]
                if x["variant"] == "eq9"
            )
            var = "; ".join(
                f"{VARIANTS[x['variant']]} (alpha = {x['alpha']:g}): {fmt_fraction(x['global_max'])}"
                for x in c["groups"]
                if x["variant"] != "eq9"
            )
            rows.append(
                (
                    f"§2.2 {lay}: N(0, 1) starts whose averaged policy reaches the global max",
                    f"Theorem 1 (stationary point) for alpha < {fmt(c['theorem1_alpha_bound'], 2)}",
                    f"eq. (9): {sweep}; {var}",
                )
            )
        return rows

    @staticmethod
    def table(results: dict) -> tuple[list[str], list[list[str]]]:
        cols = [
            "layout",
            "task",
            "own optimum",
            "P(goal): MC DCPG, mu = start (mean +- SE)",
            "exact DCPG, mu = start",
            "MC DCPG, mu = uniform",
            "exact DCPG, mu = uniform",
            "best det. shared policy",
        ]
        rows = []
        for r in results["layouts"].values():
            s = r["summary"]
            mt, mu_ = s["task"]["montecarlo"], s["uniform"]["montecarlo"]
            et, eu = r["runs"]["task"]["exact"], r["runs"]["uniform"]["exact"]
            for i in range(len(r["own_optimum"])):
                rows.append(
                    [
                        r["label"] if i == 0 else "",
                        str(i + 1),
                        fmt(r["own_optimum"][i], 3),
                        f"{fmt(mt['success_mean'][i], 2)} +- {fmt(mt['success_se'][i], 1)}",
                        fmt(et["success"][i], 2),
                        f"{fmt(mu_['success_mean'][i], 2)} +- {fmt(mu_['success_se'][i], 1)}",
                        fmt(eu["success"][i], 2),
                        fmt(r["best_deterministic_success"][i], 2),
                    ]
                )
            rows.append(
                [
                    "",
                    "goals (sum)",
                    "",
                    f"{fmt(mt['goals_mean'], 3)} +- {fmt(mt['goals_se'], 1)}",
                    fmt(s["task"]["exact"]["goals"], 3),
                    f"{fmt(mu_['goals_mean'], 3)} +- {fmt(mu_['goals_se'], 1)}",
                    fmt(s["uniform"]["exact"]["goals"], 3),
                    fmt(float(np.sum(r["best_deterministic_success"])), 3),
                ]
            )
            best = fmt(r["best_deterministic"], 3) + ("" if r["search_complete"] else " (search cut)")
            rows.append(
                [
                    "",
                    "objective sum_i V_i",
                    fmt(sum(r["own_optimum"]), 3),
                    f"{fmt(mt['objective_mean'], 3)} +- {fmt(mt['objective_se'], 1)}",
                    fmt(et["objective"], 3),
                    f"{fmt(mu_['objective_mean'], 3)} +- {fmt(mu_['objective_se'], 1)}",
                    fmt(eu["objective"], 3),
                    f"{best} (bound {fmt(r['bound'], 3)})",
                ]
            )
        return cols, rows

    @staticmethod
    def extra_tables(results: dict) -> list[tuple[str, list[str], list[list[str]]]]:
        """The chains: limits per step size and variant."""
        cols = [
            "chain",
            "update",
            "alpha",
            "iterations",
            "uniform start",
            "N(0, 1) starts: limits",
            "at the global max (95% CI)",
            "disagreeing: pi_i(L|S3)",
            "disagreeing: consensus error",
        ]
        rows = []
        for lay, c in results["chains"].items():
            for x in c["groups"]:
                counts = "; ".join(f"{k} x {p}" for p, k in x["counts"].items())
                rows.append(
                    [
                        lay,
                        VARIANTS[x["variant"]],
                        f"{x['alpha']:g}",
                        str(x["iters"]),
                        x["uniform_start"] or "-",
                        counts,
                        fmt_fraction(x["global_max"]) if x["global_max"] else "-",
                        "-"
                        if not x["disagreeing"]
                        else f"{fmt(x['disagreeing_pi_L_S3'][0], 3)} / {fmt(x['disagreeing_pi_L_S3'][1], 3)}",
                        "-"
                        if not x["disagreeing"]
                        else "-".join(fmt(v, 2) for v in x["disagreeing_consensus_error"]),
                    ]
                )
        bound = next(iter(results["chains"].values()))["theorem1_alpha_bound"]
        title = (
            f"§2.2 chains (Theorem 1's step-size bound here: alpha < {fmt(bound, 2)}; per-run records, each "
            "agent's pi_i(L|S3), in the summary and chains.csv)"
        )
        return [(title, cols, rows)]


def _write_chain_csv(path, results: dict) -> None:
    """Every chain run: start, update, alpha, limit, objective, each agent's pi_i(L|S3), consensus error."""
    import csv

    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            [
                "chain",
                "variant",
                "alpha",
                "iters",
                "init",
                "seed",
                "limit",
                "objective",
                "pi_1(L|S3)",
                "pi_2(L|S3)",
                "pi(L|S3) of the average",
                "consensus_error",
                "stationarity",
            ]
        )
        for lay, c in results["chains"].items():
            for x in c["runs"]:
                p, _, agree = _limit(x, c["closed_forms"])
                w.writerow(
                    [
                        lay,
                        x["variant"],
                        x["alpha"],
                        x["iters"],
                        x["init"],
                        x["seed"],
                        _limit_label(p, agree),
                        f"{x['objective']:.6g}",
                        *(f"{v:.4f}" for v in x["pi_L_S3"]),
                        f"{x['pi_L_S3_average']:.4f}",
                        f"{x['consensus_error']:.4g}",
                        f"{x['stationarity']:.3g}",
                    ]
                )


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
    ax.set_title(title, fontsize=7.5)


def _figure(ctx: Context, mc, ex, results, optima) -> None:
    pyplot = plt()
    if pyplot is None:
        return
    from matplotlib.lines import Line2D

    from mpg_envs.gridworld.env import MultiTaskGridWorldEnv

    fig, axes = pyplot.subplots(6, 5, figsize=(17, 21))
    for k, lay in enumerate(LAYOUTS):
        env = MultiTaskGridWorldEnv(layout=lay, gamma=GAMMA)
        r = results["layouts"][lay]
        N = len(env.tasks)
        row = 0
        for mu in STARTS:
            s = r["summary"][mu]
            seed = s["montecarlo"]["median_seed"]
            run = next(x for x in mc[lay, mu] if x.config.seed == seed)
            rec = next(x for x in r["runs"][mu]["montecarlo"] if x["seed"] == seed)
            pols = np.load(run.run_dir / "final.npz")["policies"]
            _draw_layout(
                axes[row, k],
                env.tasks,
                pols,
                f"{r['label']}\nMC DCPG, {STARTS[mu]}: median-objective seed {seed}\n"
                f"expected goals {fmt(float(np.sum(rec['success'])), 2)} of {N} "
                f"(all seeds: {fmt(s['montecarlo']['goals_mean'], 2)})",
            )
            pe = np.load(ex[lay, mu].run_dir / "final.npz")["policies"]
            _draw_layout(
                axes[row + 1, k],
                env.tasks,
                pe,
                f"exact DCPG, {STARTS[mu]}: expected goals {fmt(s['exact']['goals'], 2)} of {N}",
            )
            row += 2
        _draw_layout(
            axes[4, k],
            env.tasks,
            [optima[lay]] * N,
            f"best deterministic shared policy: objective {fmt(r['best_deterministic'], 3)}",
        )
        ax = axes[5, k]
        for c, mu in zip(("C0", "C2"), STARTS):
            runs = mc[lay, mu]
            its = runs[0].column("iteration")
            Y = np.stack([x.column("objective") for x in runs])
            m, se = Y.mean(axis=0), Y.std(axis=0, ddof=1) / np.sqrt(len(Y)) if len(Y) > 1 else 0 * Y[0]
            ax.plot(its, m, color=c, label=f"MC DCPG, {STARTS[mu]} (mean +- SE, {len(Y)} seeds)")
            ax.fill_between(its, m - se, m + se, color=c, alpha=0.25)
            ax.plot(its, ex[lay, mu].column("objective"), color=c, ls="--", label=f"exact DCPG, {STARTS[mu]}")
        bound, best = r["bound"], r["best_known"]
        if abs(bound - best) <= 1e-3 * max(1.0, abs(bound)):
            ax.axhline(bound, color="k", ls="-", lw=1, label=f"optimum {fmt(bound, 3)} (bound = best known)")
        else:
            ax.axhspan(
                best,
                bound,
                color="0.6",
                alpha=0.5,
                lw=0,
                label=f"optimum in [{fmt(best, 3)}, {fmt(bound, 3)}] (best known, upper bound)",
            )
        ax.set(xlabel="iteration", ylabel="sum_i V_i(start) of the average" if k == 0 else None)
        ax.legend(fontsize=6, loc="lower right")
    handles = [
        Line2D([], [], color=f"C{i}", lw=2, label=f"task {i + 1} (goal G{i + 1}, obstacle x{i + 1})")
        for i in range(6)
    ]
    handles += [
        Line2D([], [], ls="", marker="s", color="k", label="start cell"),
        Line2D([], [], ls="", marker="*", color="0.3", ms=9, label="path ends at its goal"),
        Line2D([], [], ls="", marker="x", color="0.3", label="... at an obstacle"),
        Line2D([], [], ls="", marker="o", color="0.3", label="... elsewhere (loops)"),
    ]
    fig.legend(handles=handles, loc="upper center", ncol=5, fontsize=8, bbox_to_anchor=(0.5, 0.975))
    fig.suptitle(
        "Paper 004 Fig. 2 (our layouts): the averaged policy's most likely path from the start cell per "
        f"task; alpha = {ALPHA:g}, lambda = {LAM:g}, {results['iters']} iterations; training start "
        "distribution mu "
        "= the start cell (rows 1-2) or uniform (rows 3-4)",
        fontsize=10,
        y=0.995,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.955))
    fig.savefig(ctx.out / "zeng2021_gridworld.png", dpi=100)
    pyplot.close(fig)


def _chain_figure(ctx: Context, chains, results) -> None:
    pyplot = plt()
    if pyplot is None:
        return
    fig, axes = pyplot.subplots(2, 3, figsize=(15, 8))
    for row, lay in enumerate(CHAINS):
        c = results["chains"][lay]
        forms = c["closed_forms"]
        rs = [
            r
            for r in chains
            if r.config.layout == lay and r.config.gradient_at == "own" and r.config.alpha == CHAIN_ALPHA
        ]
        ax, ax2 = axes[row, 0], axes[row, 1]
        for r in rs:
            p, _, agree = _limit(_chain_record(r), forms)
            colour = "C3" if r.config.init == "zeros" else ("C0" if agree else "C1")
            its = r.column("iteration")
            keep = its >= 1  # log axis: from the first iteration
            ax.plot(
                its[keep],
                r.column("objective")[keep],
                color=colour,
                lw=2 if r.config.init == "zeros" else 0.7,
                alpha=0.8,
            )
            ce = r.column("consensus_error")
            ax2.plot(
                its[keep],
                np.maximum(ce[keep], 1e-12),
                color=colour,
                lw=2 if r.config.init == "zeros" else 0.7,
                alpha=0.8,
            )
        for k, (name, v) in enumerate(forms.items()):
            ax.axhline(v, color="k", ls=["--", ":"][k], lw=1, label=f"{name}: {v:.4f}")
        ax.plot([], [], color="C3", lw=2, label="uniform start")
        ax.plot([], [], color="C0", label="N(0, 1) start, agents agree")
        ax.plot([], [], color="C1", label="N(0, 1) start, agents disagree")
        ax.set_xscale("log")
        ax.set(
            title=f"{lay}: eq. (9), alpha = {CHAIN_ALPHA:g}",
            xlabel="iteration",
            ylabel="V_1 + V_2 of the average",
        )
        ax.legend(fontsize=6.5)
        ax2.set(
            xscale="log",
            yscale="log",
            title=f"{lay}: consensus error, alpha = {CHAIN_ALPHA:g}",
            xlabel="iteration",
            ylabel="max_i ||theta_i - mean||",
        )
        ax3 = axes[row, 2]
        eq = [x for x in c["groups"] if x["variant"] == "eq9"]
        a = np.array([x["alpha"] for x in eq])
        f = np.array([x["global_max"]["fraction"] for x in eq])
        lo = np.array([x["global_max"]["low"] for x in eq])
        hi = np.array([x["global_max"]["high"] for x in eq])
        ax3.errorbar(a, f, yerr=[f - lo, hi - f], fmt="o-", color="C0", capsize=3, label="eq. (9)")
        for k, x in enumerate(y for y in c["groups"] if y["variant"] != "eq9"):
            g = x["global_max"]
            ax3.errorbar(
                [x["alpha"] * (1.04 + 0.04 * k)],
                [g["fraction"]],
                yerr=[[g["fraction"] - g["low"]], [g["high"] - g["fraction"]]],
                fmt=["s", "^"][k],
                color=f"C{2 + k}",
                capsize=3,
                label=f"{VARIANTS[x['variant']]}",
            )
        ax3.axvline(c["theorem1_alpha_bound"], color="k", ls=":", lw=1)
        ax3.text(
            c["theorem1_alpha_bound"] * 1.1,
            0.5,
            f"Theorem 1's bound\nalpha < {c['theorem1_alpha_bound']:.1e}",
            fontsize=7,
        )
        ax3.set_xscale("log")
        ax3.set_xlim(c["theorem1_alpha_bound"] / 2, 4)
        ax3.set(
            ylim=(-0.05, 1.05),
            xlabel="alpha",
            ylabel="fraction of N(0, 1) starts (95% Wilson CI)",
            title=f"{lay}: averaged policy at the global max",
        )
        ax3.legend(fontsize=7, loc="lower left")
    fig.suptitle(f"Paper 004 §2.2 chains, exact DCPG, gamma = sqrt(1/2), p = {CHAIN_P}", fontsize=10)
    fig.tight_layout()
    fig.savefig(ctx.out / "zeng2021_chains.png", dpi=110)
    pyplot.close(fig)


# ------------------------------------------------------------------------------ graph study
GRAPH_STUDY = ("complete", "star", "ring", "path")
GRAPH_LAYOUT = "start_top_right"
#: Iterations of the study inside Theorem 1's regime (metrics at every iteration).
REGIME_ITERS = {True: 400, False: 150}
#: The relative distance to the steady consensus error over which its contraction factor is fitted
#: (below 1e-3 the policy's slow drift, ~1e-6 relative over 400 iterations, would bias it).
FIT_WINDOW = (1e-3, 1e-1)


def _frozen_consensus(W: np.ndarray, g0: np.ndarray, alpha: float, iters: int) -> np.ndarray:
    """The consensus error of eq. (9) from a common start when every agent's gradient stays ``g0``
    (the limit of a small step size): ``e^{k+1} = W e^k + alpha (g0 - mean g0)``, ``e^0 = 0``;
    returns ``max_i ||e_i^k||`` for k = 0..iters, shape (iters + 1,).

    Args:
        W: Mixing weights (N, N).
        g0: Each agent's local gradient at the start, shape (N, d).
        alpha: The step size.
        iters: Iterations.
    """
    dev = alpha * (g0 - g0.mean(axis=0))
    e = np.zeros_like(g0)
    out = [0.0]
    for _ in range(iters):
        e = W @ e + dev
        out.append(float(np.linalg.norm(e, axis=1).max()))
    return np.array(out)


def _contraction(c: Sequence[float], window: tuple[float, float] = FIT_WINDOW) -> dict:
    """The geometric rate at which ``c_k`` approaches its last value: least squares of
    ``log(c_K - c_k)`` on k over the iterations where ``(c_K - c_k) / c_K`` lies in ``window``,
    and the first iteration from which ``c_k`` stays within 1% of ``c_K``."""
    c = np.asarray(c, dtype=float)
    gap = (c[-1] - c) / c[-1]
    k = np.arange(len(c))
    sel = (np.abs(gap) >= window[0]) & (np.abs(gap) <= window[1])
    rate = None
    if sel.sum() >= 3:
        slope = np.polyfit(k[sel], np.log(np.abs(gap[sel])), 1)[0]
        rate = float(np.exp(slope))
    return {"rate": rate, "points": int(sel.sum()), "to_1pc": first_from(np.abs(gap) <= 0.01, k)}


class Graphs:
    """``zeng2021-graphs``: the communication graph's effect, inside and outside Theorem 1's regime."""

    NAME = "zeng2021-graphs"
    TITLE = "Paper 004, communication graphs and Theorem 1's spectral gap"
    PAPER = "Zeng et al. 2021, Theorem 1"
    DESCRIPTION = (
        f"DCPG on the six tasks of `{GRAPH_LAYOUT}` over the complete graph, a star, the ring and a path "
        "(lazy Metropolis weights; sigma_2 and sigma_N are W's second largest and smallest singular values). "
        "Theorem 1 (exact gradients, mu_i = rho_i, alpha below eq. (10)'s bound (1 + sigma_N) / (sum_i 16 / "
        "(1 - gamma)^3 + 4 N lambda / |S|), here about 1.3e-6) bounds "
        "min_k ||1/N sum_j grad V_j(theta_i^k)||^2 by O(1 / (K alpha)) plus a term "
        "O(alpha^2 / (1 - sigma_2)^2): the graph enters through the agents' "
        "disagreement, max_i ||theta_i - mean|| <= alpha D / (1 - sigma_2) (its Lemma B.2, D = 2 N lambda + "
        "sum_i 1 / (1 - gamma)^2). **Inside the regime**: exact gradients, lambda = 0.01, alpha = the "
        "smallest of the four graphs' bounds, 400 iterations with metrics at every one. Oracle: the "
        "consensus error of "
        "eq. (9) with every gradient frozen at its start value (alpha this small moves the policy by ~1e-7), "
        "computed from W; its distance to the steady value contracts by exactly sigma_2 per iteration. "
        "Measured: the contraction factor fitted to the measured consensus error (relative distance to its "
        "last value between 1e-3 and 0.1; the policy drifts by ~1e-6 relative meanwhile), the iterations "
        "until it stays within 1% of its steady value, the "
        "steady value against the frozen-gradient prediction and Lemma B.2's bound, and Theorem 1's "
        "stationarity measure. **Outside the regime** (the earlier study, kept for comparison): alpha = 3 "
        "(about 2e6 times the bound), lambda = 0.01, 2000 iterations, exact gradients (one run per graph) "
        "and Monte Carlo ones (10 seeds): the first iteration from which the averaged policy's objective "
        "stays at or above 90% of the complete graph's final objective (Monte Carlo: the median over seeds, "
        "target 90% of the complete graph's mean). This measures reaching 90% of a local optimum at a step "
        "size far outside the theorem's, so it cannot test the 1 / (1 - sigma_2)^2 scaling. **Why the Monte "
        "Carlo means end above the exact curves**: exact DCPG at alpha = 3 converges (ring: 1.726 at 2000 "
        "iterations, 1.729 at 17,000; 1.727 with lambda = 0) to a symmetric fixed point of eq. (9) where the "
        "agents disagree (consensus error 0.49) and tasks 1 and 5, whose goals are worth the same, share a "
        "compromise route worth 0.865 each. Gradient noise breaks it: on the ring one-episode and "
        "ten-episode runs (seeds 0, 1) end with one of the two tasks on its own optimal route (0.95) and the "
        "other at 0.857, sum 1.80-1.81, while runs with 100 episodes per iteration (less noise) stay at the "
        "symmetric point (1.724, 1.725). So does a smaller step: exact DCPG with alpha = 0.3 ends at 1.802 "
        "(0.942 and 0.860, consensus error 0.008) after 20,000 iterations. On the complete graph, the star "
        "and the path some Monte Carlo seeds also reach a third goal."
    )

    @staticmethod
    def run(ctx: Context) -> dict:
        from baselines.consensus.graphs import Topology
        from mpg_envs.gridworld.env import MultiTaskGridWorldEnv

        seeds = ctx.seed_list(10, 2)
        iters = 2000 if ctx.full else 300
        runs_out = str(ctx.out / "runs")
        env = MultiTaskGridWorldEnv(layout=GRAPH_LAYOUT, gamma=GAMMA)
        ts = TaskSet.from_env(env)
        N = len(env.tasks)
        topo = {g: Topology.make(g, N, weights="lazy_metropolis") for g in GRAPH_STUDY}
        bounds = {
            g: theorem1_alpha_bound([GAMMA] * N, LAM, ts.n_states, t.spectrum.sigma_n)
            for g, t in topo.items()
        }
        alpha_r = min(bounds.values())
        k_r = REGIME_ITERS[ctx.full]
        base = replace(_base(GRAPH_LAYOUT, runs_out, iters), eval_every=10, eval_log=False)
        ex_cfgs = [replace(base, graph=g, gradient="exact") for g in GRAPH_STUDY]
        mc_cfgs = [replace(base, graph=g, seed=s) for g in GRAPH_STUDY for s in seeds]
        reg_cfgs = [
            replace(
                base,
                graph=g,
                gradient="exact",
                alpha=alpha_r,
                iters=k_r,
                eval_every=1,
                checkpoint_every=10**6,
            )
            for g in GRAPH_STUDY
        ]
        runs = run_dcpg_grid(Graphs.NAME, ex_cfgs + mc_cfgs + reg_cfgs, ctx)
        nx = len(ex_cfgs)
        ex = dict(zip(GRAPH_STUDY, runs[:nx]))
        mc = {g: runs[nx + k * len(seeds) : nx + (k + 1) * len(seeds)] for k, g in enumerate(GRAPH_STUDY)}
        reg = dict(zip(GRAPH_STUDY, runs[nx + len(mc_cfgs) :]))
        g0, _ = ts.gradient(np.zeros((N, ts.n_states, ts.n_actions)), np.arange(N), LAM)
        graphs: dict = {}
        series = {}
        for g in GRAPH_STUDY:
            its = ex[g].column("iteration").astype(int)
            r_its = reg[g].column("iteration").astype(int)
            graphs[g] = {
                "sigma_2": topo[g].spectrum.sigma_2,
                "sigma_n": topo[g].spectrum.sigma_n,
                "outside": {
                    "iterations": its.tolist(),
                    "exact_objective": _ls(ex[g].column("objective")),
                    "exact_consensus_error": ex[g].last["consensus_error"],
                    "exact_stationarity": ex[g].last["stationarity"],
                    "mc_objective": [_ls(r.column("objective")) for r in mc[g]],
                    "mc_consensus_error": [r.last["consensus_error"] for r in mc[g]],
                },
                "regime": {
                    "iterations": r_its.tolist(),
                    "consensus_error": _ls(reg[g].column("consensus_error")),
                    "oracle_consensus_error": _ls(
                        _frozen_consensus(topo[g].weights, g0.reshape(N, -1), alpha_r, int(r_its[-1]))[r_its]
                    ),
                    "stationarity": _ls(reg[g].column("stationarity")),
                    "objective": _ls(reg[g].column("objective")),
                },
            }
            series[f"{g} exact"] = (its, ex[g].column("objective")[None])
            series[f"{g} montecarlo"] = (its, np.stack([r.column("objective") for r in mc[g]]))
            series[f"{g} theorem regime consensus error"] = (r_its, reg[g].column("consensus_error")[None])
        results = Graphs.rederive(
            {
                "iters": iters,
                "layout": GRAPH_LAYOUT,
                "gammas": [GAMMA] * N,
                "lam": LAM,
                "n_states": ts.n_states,
                "alpha_outside": ALPHA,
                "alpha_regime": alpha_r,
                "graphs": graphs,
            }
        )
        write_curves(ctx.out / "curves.csv", series, "std")
        _graph_figure(ctx, results)
        return results

    @staticmethod
    def rederive(results: dict) -> dict:
        """Every aggregate of a summary from its per-run records."""
        keys = ("iters", "layout", "gammas", "lam", "n_states", "alpha_outside", "alpha_regime")
        out = {k: results[k] for k in keys}
        gs = results["graphs"]
        gam, lam, S = results["gammas"], results["lam"], results["n_states"]
        N = len(gam)
        D = 2 * N * lam + float(np.sum(1.0 / (1.0 - np.asarray(gam)) ** 2))
        out["alpha_bounds"] = {g: theorem1_alpha_bound(gam, lam, S, r["sigma_n"]) for g, r in gs.items()}
        out["regime_is_inside"] = all(results["alpha_regime"] <= b for b in out["alpha_bounds"].values())
        o = {g: r["outside"] for g, r in gs.items()}
        first = next(iter(o))
        out["target_exact"] = 0.9 * o["complete" if "complete" in o else first]["exact_objective"][-1]
        out["target_mc"] = 0.9 * float(
            np.mean([y[-1] for y in o["complete" if "complete" in o else first]["mc_objective"]])
        )
        out["graphs"] = {}
        for g, r in gs.items():
            its = np.asarray(r["outside"]["iterations"])
            to_mc = [first_from(np.asarray(y) >= out["target_mc"], its) for y in r["outside"]["mc_objective"]]
            reached = [t for t in to_mc if t is not None]
            mco = [y[-1] for y in r["outside"]["mc_objective"]]
            reg = r["regime"]
            c = np.asarray(reg["consensus_error"])
            oc = np.asarray(reg["oracle_consensus_error"])
            fit, fit_o = _contraction(c), _contraction(oc)
            gap = 1.0 - r["sigma_2"]
            out["graphs"][g] = {
                "sigma_2": r["sigma_2"],
                "sigma_n": r["sigma_n"],
                "outside": r["outside"],
                "regime": reg,
                "gap": gap,
                "theorem_constant": 1.0 / gap**2,
                "exact_iterations": first_from(
                    np.asarray(r["outside"]["exact_objective"]) >= out["target_exact"], its
                ),
                "exact_objective": r["outside"]["exact_objective"][-1],
                "mc_iterations": to_mc,
                "mc_median_iterations": float(np.median(reached)) if len(reached) > len(to_mc) / 2 else None,
                "mc_objective_mean": mean_se(mco)[0],
                "mc_objective_se": mean_se(mco)[1],
                "mc_consensus_error_mean": mean_se(r["outside"]["mc_consensus_error"])[0],
                "regime_rate": fit["rate"],
                "regime_rate_points": fit["points"],
                "regime_rate_oracle": fit_o["rate"],
                "regime_to_1pc": fit["to_1pc"],
                "regime_to_1pc_oracle": fit_o["to_1pc"],
                "regime_steady": float(c[-1]),
                "regime_steady_oracle": float(oc[-1]),
                "regime_max_rel_deviation": float(np.max(np.abs(c[1:] - oc[1:]) / oc[-1])),
                "regime_lemma_b2_bound": results["alpha_regime"] * D / gap,
                "regime_steady_scaled": float(c[-1]) * gap / results["alpha_regime"],
                "regime_stationarity_first": reg["stationarity"][0],
                "regime_stationarity_last": reg["stationarity"][-1],
            }
        return out

    @staticmethod
    def headline(results: dict) -> list[tuple[str, str, str]]:
        gs = results["graphs"]
        inside = "; ".join(
            f"{g} (sigma_2 = {fmt(r['sigma_2'], 3)}): factor {fmt(r['regime_rate'], 4)}, within 1% after "
            f"{_its(r['regime_to_1pc'])} iterations"
            for g, r in gs.items()
        )
        outside = "; ".join(
            f"{g} (1/(1 - sigma_2)^2 = {fmt(r['theorem_constant'], 3)}): "
            f"exact {_its(r['exact_iterations'])}, "
            f"MC median {fmt(r['mc_median_iterations'], 3)}"
            for g, r in gs.items()
        )
        ratio = [r["regime_to_1pc"] * r["gap"] for r in gs.values() if r["regime_to_1pc"] is not None]
        ratio = ratio or [float("nan")]
        worst = max(r["regime_steady"] / r["regime_lemma_b2_bound"] for r in gs.values())
        within = worst <= 1.0
        move = max(
            abs(r["regime_stationarity_last"] - r["regime_stationarity_first"])
            / r["regime_stationarity_first"]
            for r in gs.values()
        )
        return [
            (
                f"Theorem 1's regime (exact gradients, alpha = {fmt(results['alpha_regime'], 2)} "
                "<= eq. (10)): "
                "consensus error's contraction factor per iteration, 6 tasks",
                "the graph enters through 1 - sigma_2 (disagreement <= alpha D / (1 - sigma_2))",
                f"{inside}; iterations to 1% x (1 - sigma_2) = {fmt(min(ratio), 2)}-{fmt(max(ratio), 2)} "
                "(so they grow like 1 / (1 - sigma_2), not its square); steady disagreement "
                f"{'within' if within else 'ABOVE'} Lemma B.2's bound on every graph (largest ratio "
                f"{fmt(worst, 2)}); Theorem 1's stationarity measure moves by at most {fmt(move, 2)} "
                f"(relative) in {results['graphs'][next(iter(gs))]['regime']['iterations'][-1]} iterations",
            ),
            (
                f"Outside the regime (alpha = {fmt(results['alpha_outside'], 2)}, "
                f"~{fmt(results['alpha_outside'] / results['alpha_regime'], 1)} "
                "x the bound): iterations to 90% of the complete graph's objective",
                "(Theorem 1 does not apply: no test of 1 / (1 - sigma_2)^2)",
                outside,
            ),
        ]

    @staticmethod
    def table(results: dict) -> tuple[list[str], list[list[str]]]:
        cols = [
            "graph",
            "sigma_2",
            "1/(1-sigma_2)",
            "1/(1-sigma_2)^2",
            "regime: contraction factor (oracle sigma_2)",
            "regime: iterations to 1% (frozen-gradient oracle)",
            "regime: steady disagreement (oracle; Lemma B.2 bound)",
            "regime: stationarity first -> last",
            "outside: exact iterations",
            "outside: exact objective",
            "outside: MC median iterations (reached/runs)",
            "outside: MC objective (mean +- SE)",
        ]
        rows = []
        for g, r in results["graphs"].items():
            reached = sum(t is not None for t in r["mc_iterations"])
            rows.append(
                [
                    g,
                    fmt(r["sigma_2"], 3),
                    fmt(1 / r["gap"], 3),
                    fmt(r["theorem_constant"], 3),
                    f"{fmt(r['regime_rate'], 5)} ({fmt(r['regime_rate_oracle'], 5)})",
                    f"{_its(r['regime_to_1pc'])} ({_its(r['regime_to_1pc_oracle'])})",
                    f"{fmt(r['regime_steady'], 3)} ({fmt(r['regime_steady_oracle'], 3)}; "
                    f"{fmt(r['regime_lemma_b2_bound'], 2)})",
                    f"{fmt(r['regime_stationarity_first'], 6)} -> {fmt(r['regime_stationarity_last'], 6)}",
                    _its(r["exact_iterations"]),
                    fmt(r["exact_objective"], 3),
                    f"{fmt(r['mc_median_iterations'], 3)} ({reached}/{len(r['mc_iterations'])})",
                    f"{fmt(r['mc_objective_mean'], 3)} +- {fmt(r['mc_objective_se'], 2)}",
                ]
            )
        return cols, rows


def _its(k: int | None) -> str:
    return "never" if k is None else str(k)


def _graph_figure(ctx: Context, out: dict) -> None:
    pyplot = plt()
    if pyplot is None:
        return
    fig, axes = pyplot.subplots(2, 3, figsize=(15, 8.5))
    gs = out["graphs"]
    a_r = out["alpha_regime"]
    for k, (g, r) in enumerate(gs.items()):
        reg = r["regime"]
        its = np.asarray(reg["iterations"])
        c, oc = np.asarray(reg["consensus_error"]), np.asarray(reg["oracle_consensus_error"])
        axes[0, 0].plot(its, c, color=f"C{k}", lw=2, alpha=0.6, label=f"{g} measured")
        axes[0, 0].plot(its, oc, color="k", ls=":", lw=0.8)
        gap = np.abs(c[-1] - c) / c[-1]
        keep = gap > 0
        axes[0, 1].semilogy(its[keep], gap[keep], color=f"C{k}", lw=2, alpha=0.6, label=g)
        axes[0, 1].semilogy(its, r["sigma_2"] ** its, color=f"C{k}", ls=":", lw=1)
        axes[0, 2].plot(r["sigma_2"], r["regime_rate"], "o", color=f"C{k}", ms=8, label=g)
        o = r["outside"]
        oits = np.asarray(o["iterations"])
        axes[1, 0].plot(oits, o["exact_objective"], color=f"C{k}", label=f"{g} exact")
        Y = np.asarray(o["mc_objective"])
        axes[1, 0].plot(
            oits, Y.mean(axis=0), color=f"C{k}", ls="--", lw=1, label=f"{g} MC mean ({len(Y)} seeds)"
        )
        if r["exact_iterations"] is not None:
            axes[1, 1].plot(
                r["theorem_constant"], r["exact_iterations"], "o", color=f"C{k}", label=f"{g} exact"
            )
        if r["mc_median_iterations"] is not None:
            axes[1, 1].plot(
                r["theorem_constant"],
                r["mc_median_iterations"],
                "s",
                mfc="none",
                color=f"C{k}",
                label=f"{g} MC median",
            )
        axes[1, 2].bar(k, r["regime_steady"] / a_r, color=f"C{k}", alpha=0.7, label=f"{g} measured")
        axes[1, 2].plot([k - 0.4, k + 0.4], [r["regime_lemma_b2_bound"] / a_r] * 2, color="k", lw=1.5)
    axes[0, 0].plot([], [], color="k", ls=":", label="frozen-gradient oracle")
    axes[0, 0].set(
        xlabel="iteration",
        ylabel="consensus error max_i ||theta_i - mean||",
        title=f"Theorem 1's regime: alpha = {a_r:.1e} (eq. 10), exact",
    )
    axes[0, 0].legend(fontsize=7)
    axes[0, 1].set(
        xlabel="iteration",
        ylabel="distance to the steady disagreement (relative)",
        ylim=(1e-9, 2),
        title="... contracts like sigma_2^k (dotted: sigma_2^k)",
    )
    axes[0, 1].legend(fontsize=7)
    axes[0, 1].text(
        0.3,
        0.45,
        "floor ~1e-6: the policy's own slow drift\n(the factor is fitted between 1e-3 and 0.1)",
        transform=axes[0, 1].transAxes,
        fontsize=7,
    )
    lim = [0.3, 1.0]
    axes[0, 2].plot(lim, lim, color="k", lw=0.8, label="factor = sigma_2")
    axes[0, 2].set(
        xlim=lim,
        ylim=lim,
        xlabel="sigma_2 of W",
        ylabel="fitted contraction factor per iteration",
        title="measured factor vs sigma_2",
    )
    axes[0, 2].legend(fontsize=7)
    axes[1, 0].axhline(out["target_exact"], color="k", ls=":", lw=1, label="target (exact)")
    axes[1, 0].set(
        xlabel="iteration",
        ylabel="sum_i V_i(rho_i) of the average",
        title=f"outside the regime: alpha = {out['alpha_outside']:g}",
    )
    axes[1, 0].legend(fontsize=6, ncol=2, loc="lower right")
    axes[1, 0].text(
        0.3,
        0.66,
        "Why MC ends above exact: exact DCPG at alpha = 3\n"
        "settles at a symmetric fixed point of eq. (9)\n"
        "(agents disagree; tasks 1 and 5 share a route,\n"
        "0.865 each); one-episode noise breaks it (0.95 +\n"
        "0.857), 100 episodes per iteration do not; exact\n"
        "alpha = 0.3 also does (1.80). Some MC seeds (complete,\n"
        "star, path) also find a third goal.",
        transform=axes[1, 0].transAxes,
        va="top",
        fontsize=6.5,
        bbox=dict(facecolor="w", alpha=0.85, lw=0),
    )
    axes[1, 1].set_xscale("log")
    axes[1, 1].set(
        xlabel="1 / (1 - sigma_2)^2",
        ylabel="iterations to 90% of complete",
        title="outside the regime: not a test of Theorem 1",
    )
    axes[1, 1].legend(fontsize=6)
    axes[1, 2].set_xticks(range(len(gs)), list(gs))
    axes[1, 2].set_yscale("log")
    axes[1, 2].plot([], [], color="k", label="Lemma B.2: D / (1 - sigma_2)")
    axes[1, 2].set(
        ylabel="steady disagreement / alpha", title="Theorem 1's regime: disagreement vs its bound"
    )
    axes[1, 2].legend(fontsize=7)
    fig.suptitle(
        f"Paper 004 Theorem 1: the six tasks of {GRAPH_LAYOUT}, lazy Metropolis weights", fontsize=10
    )
    fig.tight_layout()
    fig.savefig(ctx.out / "zeng2021_graphs.png", dpi=110)
    pyplot.close(fig)
