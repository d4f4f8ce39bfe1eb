"""Paper 004 (Zeng et al. 2021) §5.2 Table 1 and Fig. 3: multi-task visual navigation from a camera,
SA-0...SA-3 against DCPG with REINFORCE / A2C / PPO local gradients, on MiniWorld (needs the ``nav``
extra: ``pip install -e ".[nav]"``, and torch).

The paper flies a drone in four PEDRA (Unreal Engine) environments, "indoor long, cloud, frogeyes,
pyramid", and reports each policy's **mean safe flight** (MSF: the distance flown before the first
collision) in every environment. Ours are the four MiniWorld environments of
:mod:`mpg_envs.nav` (``mpg/IndoorNav-v0``, one agent per environment): Env0 = hallway, Env1 =
rooms, Env2 = hall, Env3 = pyramid. That mapping to PEDRA's environments is ours (the paper's
are different buildings; ours differ the same ways: layout, textures, light, obstacles). The MSF
of one policy in one environment is the mean over ``eval_episodes`` Monte Carlo episodes of
``info["distance"]`` at the episode's end (metres moved before the collision, or before the step
limit), from the same seeded starts for every policy evaluated in that environment (common random
numbers, so the comparisons are paired within a seed too).

Protocol (paper 004 §5.2 / App. C.1): PEDRA's five-layer C3F2 network on RGB frames
(:mod:`baselines.policies.nets`, fully connected width 1024), Adam 1e-4, gamma 0.99,
relative-entropy weight 0.03, PPO clip 0.2, every-visit Monte Carlo returns, one episode per agent
per iteration, ring graph with lazy Metropolis weights, communication every episode; SA-i is the
same training without communication (one run with ``communicate=False`` trains all four SA
agents, agent i alone in environment i). Table 1's SA-i row is agent i's own policy of that run;
its DCPG row is the agents' averaged parameters of the DCPG run. Each seed runs one DCPG and one
SA run per local gradient; Table 1 prints the MSF mean +- std over seeds (ddof = 1), each seed's
MSF the mean over its evaluation episodes. Fig. 3 plots the mean distance of the training
episodes (REINFORCE) between evaluations: SA-i in environment i against DCPG's agent i there.

What was cut (the paper: 4000 episodes per agent, 25 h on two RTX 2080 GPUs; here two CPU cores):

* ``--full``: :data:`FULL` -- 3 seeds, 150 iterations (episodes per agent) instead of 4000,
  64x64 frames instead of 103x103, at most 100 steps per episode (10-30 m of flight), 5
  evaluation episodes per policy and environment, an evaluation (and a Fig. 3 point) every 25
  iterations. Measured: 35 min of wall time with 2 worker processes on 2 cores that another job
  shared (load 4-6); the 18 runs' own wall times sum to 65 min (PPO 250-570 s a run, 1.2-4.9 s
  per iteration as its episodes lengthen; A2C 100-160 s; REINFORCE 80-120 s, 0.45-0.85 s per
  iteration). Everything else is the paper's.
* quick (default): :data:`QUICK` -- 1 seed, 3 iterations, at most 30 steps, 2 evaluation
  episodes: an end-to-end check of the pipeline (under a minute), not an experiment.

Neither decides what the paper's scale would: at 4% of the paper's episodes the networks have
only begun to learn (the table's "untrained network" row is the initial network's MSF, at
iteration 0 of the SA run), and three seeds give wide intervals. The verdicts are reported as measured,
with the paired intervals that say how little they decide.

Claims tested (each per local gradient and environment i, paired over seeds, 95% t intervals):

* (a) "DCPG does well in all four environments while SA-i does well only in its own":
  SA-i's MSF in Env i minus the mean MSF of the other SA-j (j != i) in Env i (specialisation),
  and DCPG's MSF in Env i minus that same mean (DCPG against the agents trained elsewhere);
* (b) "DCPG sometimes beats SA-i in SA-i's own environment": DCPG - SA-i in Env i.
"""

from __future__ import annotations

import importlib.util

import numpy as np

from baselines.experiments.common import Context, fmt, plt, write_curves
from baselines.experiments.dcpg_grid import DCPGRun, run_dcpg_grid
from baselines.experiments.stats import fmt_interval, mean_se, paired, paired_verdict, quick_label
from baselines.experiments.zeng2021_paper import PAPER, PAPER_ENVS, PAPER_SUMS

__all__ = ["Navigation", "FULL", "QUICK", "ENV_NAMES", "table1_matrix", "miniworld_missing"]

#: Our environments in the order of the paper's Env0..Env3 (the mapping is ours).
ENV_NAMES = ("hallway", "rooms", "hall", "pyramid")
ESTIMATORS = {"REINFORCE": "reinforce", "A2C": "a2c", "PPO": "ppo"}
ROWS = ["SA-0", "SA-1", "SA-2", "SA-3", "DCPG"]
#: The ``--full`` protocol (what 2 cores run in about 30 minutes with 2 workers).
FULL = {"seeds": 3, "iters": 150, "eval_every": 25, "resolution": 64, "max_cycles": 100, "eval_episodes": 5}
#: The quick protocol (default): an end-to-end check in under a minute.
QUICK = {"seeds": 1, "iters": 3, "eval_every": 3, "resolution": 64, "max_cycles": 30, "eval_episodes": 2}
INSTALL = 'pip install -e ".[nav]"'
#: A comparison where one side crashed in fewer than this share of its evaluation episodes (the rest
#: reached the step limit) compares a capped MSF, a lower bound of that side's safe flight.
CAPPED = 0.5


def miniworld_missing() -> str | None:
    """Why this reproduction cannot run here (MiniWorld or torch not installed), or None."""
    for module, what in (("miniworld", "MiniWorld"), ("torch", "torch")):
        if importlib.util.find_spec(module) is None:
            return f"{what} is not installed ({INSTALL} brings it)"
    return None


def _config(gradient: str, communicate: bool, seed: int, protocol: dict, out: str):
    from baselines.consensus.envtasks import EnvDCPGConfig

    return EnvDCPGConfig(
        env="mpg/IndoorNav-v0",
        env_kwargs={"resolution": protocol["resolution"], "max_cycles": protocol["max_cycles"]},
        policy="cnn", hidden="1024", gradient=gradient, gamma=0.99, alpha=1e-4, critic_lr=1e-4,
        lam=0.03, clip=0.2, episodes=1, graph="ring", weights="lazy_metropolis",
        communicate=communicate, seed=seed, iters=protocol["iters"], eval_every=protocol["eval_every"],
        eval_episodes=protocol["eval_episodes"], out=out,
    )  # fmt: skip


def table1_matrix(sa_distance: np.ndarray, dcpg_distance: np.ndarray) -> np.ndarray:
    """One seed's Table 1: MSF of rows SA-0..SA-3, DCPG (5) in columns Env0..Env3 (4).

    Args:
        sa_distance: The SA run's final.npz ``distance``, shape (N + 1, N, E): rows = the policy
            (agent 0 .. N-1's own, then their average), columns = the task it flew in.
        dcpg_distance: The DCPG run's, same layout.

    Returns:
        Shape (N + 1, N): row i < N is SA agent i's own policy, row N the DCPG run's average
        policy; each entry the mean over the E episodes.
    """
    sa, dc = np.asarray(sa_distance, dtype=float), np.asarray(dcpg_distance, dtype=float)
    if sa.ndim != 3 or dc.shape != sa.shape or sa.shape[0] != sa.shape[1] + 1:
        raise ValueError(f"need two (N + 1, N, E) distance arrays, got {sa.shape} and {dc.shape}")
    n = sa.shape[1]
    return np.concatenate([sa[:n].mean(axis=2), dc[n:].mean(axis=2)])


def _others(M: np.ndarray, i: int) -> np.ndarray:
    """Per seed, the mean MSF in Env i of the SA-j trained elsewhere (j != i); M (n, 5, 4)."""
    return np.mean([M[:, j, i] for j in range(4) if j != i], axis=0)


def _std(x: np.ndarray) -> np.ndarray:
    """Standard deviation over seeds (axis 0, ddof = 1); 0 for a single seed."""
    return x.std(axis=0, ddof=1) if len(x) > 1 else np.zeros(x.shape[1:])


def _paper_claims(name: str) -> dict[str, list[float]]:
    P = np.asarray(PAPER[name])
    others = [np.mean([P[j, i] for j in range(4) if j != i]) for i in range(4)]
    return {
        "specialisation": [float(P[i, i] - others[i]) for i in range(4)],
        "generality": [float(P[4, i] - others[i]) for i in range(4)],
        "own_env": [float(P[4, i] - P[i, i]) for i in range(4)],
    }


class Navigation:
    """``zeng2021-navigation``: paper 004 Table 1 and Fig. 3 on MiniWorld."""

    NAME = "zeng2021-navigation"
    TITLE = "Paper 004, multi-task visual navigation on MiniWorld (Table 1, Fig. 3)"
    PAPER = "Zeng et al. 2021, §5.2, Table 1 and Fig. 3"
    DESCRIPTION = (
        "One navigation policy from a front-facing camera in four MiniWorld environments "
        "(`mpg/IndoorNav-v0`; Env0 hallway, Env1 rooms, Env2 hall, Env3 pyramid: our stand-ins for "
        "PEDRA's indoor long, cloud, frogeyes and pyramid -- that mapping is ours). **Mean safe flight** "
        "(MSF): metres moved before the first collision (or the step limit), mean over the evaluation "
        "episodes, the same seeded starts for every policy in an environment. PEDRA's five-layer C3F2 "
        "network, Adam 1e-4, gamma 0.99, lambda 0.03, PPO clip 0.2, one episode per agent per "
        "iteration, ring graph (lazy Metropolis); SA-i = agent i of the run without communication, "
        "DCPG = the average of the DCPG run's agents; Table 1 = mean +- std over seeds (ddof = 1). "
        "**Cut from the paper** (4000 episodes, 103x103 frames, 25 h on two GPUs): 3 seeds, 150 "
        "iterations, 64x64 frames, at most 100 steps per episode, 5 evaluation episodes per policy "
        "and environment (35 min of wall time on 2 shared CPU cores with 2 workers). At 4% of the "
        "paper's episodes the networks have only begun to learn (compare each row with the "
        "'untrained network' row: the initial network's MSF at iteration 0 of the SA run, from other "
        "seeded starts than the final evaluation), and 3 seeds give wide intervals, so this run "
        "cannot decide what the paper's scale would; the verdicts below are what this protocol "
        "measures. Claims: (a) SA-i in Env i minus "
        "the mean of the other SA-j there (specialisation), DCPG in Env i minus that mean "
        "(generality); (b) DCPG - SA-i in Env i; each paired over seeds with its 95% t interval "
        "(the verdict word comes from the interval). **Step limit**: an episode that reaches it ends "
        "without a collision, so its distance is a lower bound of the safe flight; a comparison where "
        "one side crashed in fewer than half of its episodes says so (the last table gives the shares). "
        "Paper's numbers are PEDRA flights (another scale) beside ours for the pattern."
    )

    @staticmethod
    def unavailable() -> str | None:
        """Why ``reproduce all`` skips this reproduction here (None: it runs)."""
        return miniworld_missing()

    @staticmethod
    def run(ctx: Context) -> dict:
        missing = miniworld_missing()
        if missing is not None:
            raise ValueError(f"zeng2021-navigation needs MiniWorld and torch: {missing}")
        protocol = dict(FULL if ctx.full else QUICK)
        seeds = ctx.seed_list(protocol["seeds"], protocol["seeds"])
        if ctx.max_iters is not None:
            protocol["iters"] = min(protocol["iters"], ctx.max_iters)
            protocol["eval_every"] = min(protocol["eval_every"], protocol["iters"])
        protocol["seeds"] = len(seeds)
        out = str(ctx.out / "runs")
        # the costliest runs first, so that two workers end together
        order = [(name, c, s) for name in ("PPO", "A2C", "REINFORCE") for c in (True, False) for s in seeds]
        cfgs = [_config(ESTIMATORS[name], c, s, protocol, out) for name, c, s in order]
        done = dict(zip(order, run_dcpg_grid(Navigation.NAME, cfgs, ctx)))
        estimators, series = {}, {}
        for name in ESTIMATORS:
            dcpg = [done[name, True, s] for s in seeds]
            sa = [done[name, False, s] for s in seeds]
            M = np.stack([table1_matrix(a.final["distance"], d.final["distance"]) for d, a in zip(dcpg, sa)])
            T = np.stack(
                [table1_matrix(a.final["terminated"], d.final["terminated"]) for d, a in zip(dcpg, sa)]
            )
            estimators[name] = {
                "seeds": seeds,
                "rows": ROWS,
                "runs": M.tolist(),  # (seeds, 5, 4) MSF
                "crashed": T.tolist(),  # (seeds, 5, 4) fraction of evaluation episodes that crashed
                "initial": [[a.metrics[0][f"distance_agent_{i}"] for i in range(4)] for a in sa],
                "consensus_error": [d.last["consensus_error"] for d in dcpg],
            }
            series.update(_training_series(name, dcpg, sa))
        results = Navigation.rederive(
            {
                "full": bool(ctx.full and ctx.max_iters is None),
                "protocol": protocol,
                "environments": list(ENV_NAMES),
                "estimators": estimators,
            }
        )
        write_curves(ctx.out / "curves.csv", series, "std")
        _figures(ctx, results, series)
        return results

    @staticmethod
    def rederive(results: dict) -> dict:
        """Every aggregate of a summary from its per-seed records."""
        out = {k: results[k] for k in ("full", "protocol", "environments")}
        out["estimators"] = {}
        for name, r in results["estimators"].items():
            M = np.asarray(r["runs"], dtype=float)  # (n, 5, 4)
            sums = M.sum(axis=2)  # (n, 5)
            init = np.asarray(r["initial"], dtype=float)  # (n, 4)
            C = np.asarray(r["crashed"], dtype=float).mean(axis=0)  # (5, 4) share of crashed episodes
            claims: dict[str, list] = {"specialisation": [], "generality": [], "own_env": []}
            for i in range(4):
                others = _others(M, i)
                c_others = float(np.mean([C[j, i] for j in range(4) if j != i]))
                for key, a, b, la, lb, crash in (
                    ("specialisation", M[:, i, i], others, f"SA-{i}", "other SA-j", (C[i, i], c_others)),
                    ("generality", M[:, 4, i], others, "DCPG", "other SA-j", (C[4, i], c_others)),
                    ("own_env", M[:, 4, i], M[:, i, i], "DCPG", f"SA-{i}", (C[4, i], C[i, i])),
                ):
                    p = paired(a, b)
                    claims[key].append(
                        {
                            "env": i,
                            "paired": p,
                            "verdict": paired_verdict(p, la, lb),
                            "capped": bool(min(crash) < CAPPED),
                        }
                    )
            vs_init = paired(sums[:, 4], init.sum(axis=1))
            out["estimators"][name] = {
                "seeds": r["seeds"],
                "rows": r["rows"],
                "runs": r["runs"],
                "crashed": r["crashed"],
                "initial": r["initial"],
                "consensus_error": r["consensus_error"],
                "mean": M.mean(axis=0).tolist(),  # (5, 4)
                "std": _std(M).tolist(),
                "sum_mean": sums.mean(axis=0).tolist(),  # (5,)
                "sum_std": _std(sums).tolist(),
                "initial_mean": init.mean(axis=0).tolist(),  # (4,)
                "initial_sum": mean_se(init.sum(axis=1))[0],
                "crashed_mean": np.asarray(r["crashed"], dtype=float).mean(axis=0).tolist(),
                "claims": claims,
                "dcpg_vs_initial": {"paired": vs_init, "verdict": paired_verdict(vs_init, "DCPG", "initial")},
            }
        return out

    @staticmethod
    def headline(results: dict) -> list[tuple[str, str, str]]:
        full = results["full"]
        rows = []
        for name, r in results["estimators"].items():
            paper, pc = PAPER_SUMS[name], _paper_claims(name)
            n = len(r["seeds"])
            vi = r["dcpg_vs_initial"]
            rows.append(
                (
                    f"Table 1 ({name}): mean safe flight, sum over Env0-3",
                    f"DCPG {paper[4]:.1f} vs SA-i {', '.join(f'{x:.1f}' for x in paper[:4])}",
                    f"DCPG {fmt(r['sum_mean'][4], 3)} +- {fmt(r['sum_std'][4], 2)} m vs SA-i "
                    f"{', '.join(fmt(x, 3) for x in r['sum_mean'][:4])} m (mean +- std, {n} seeds); the "
                    f"untrained network {fmt(r['initial_sum'], 3)} m; "
                    + quick_label(f"DCPG vs untrained: {vi['verdict']}, {fmt_interval(vi['paired'])}", full),
                )
            )
            for key, title, says in (
                (
                    "specialisation",
                    "(a) SA-i does well only in its own Env: SA-i - mean of the other SA-j, in Env i",
                    "SA-i best in its own Env",
                ),
                (
                    "generality",
                    "(a) DCPG does well in all four: DCPG - mean of the SA-j (j != i), in Env i",
                    "DCPG above the SA-j trained elsewhere",
                ),
                ("own_env", "(b) DCPG - SA-i in SA-i's own Env i", "DCPG sometimes above SA-i"),
            ):
                verdicts = "; ".join(
                    f"Env{c['env']}: {c['verdict']}"
                    + (" (a side mostly at the step limit: its MSF is a lower bound)" if c["capped"] else "")
                    + f", {fmt_interval(c['paired'])}"
                    for c in r["claims"][key]
                )
                rows.append(
                    (
                        f"Table 1 ({name}) {title}",
                        f"{says}: " + ", ".join(f"{x:+.1f}" for x in pc[key]),
                        quick_label(f"paired over {n} seeds, 95% CI: {verdicts}", full),
                    )
                )
        return rows

    @staticmethod
    def table(results: dict) -> tuple[list[str], list[list[str]]]:
        envs = results["environments"]
        cols = ["policy", *(f"Env{i} ({e})" for i, e in enumerate(envs)), "Sum", "paper (Env0-3, Sum)"]
        rows = []
        for name, r in results["estimators"].items():
            rows.append(
                [
                    f"{name}: untrained network (iteration 0)",
                    *(fmt(x, 3) for x in r["initial_mean"]),
                    fmt(r["initial_sum"], 3),
                    "-",
                ]
            )
            for j, label in enumerate(r["rows"]):
                cells = [f"{fmt(r['mean'][j][i], 3)} +- {fmt(r['std'][j][i], 2)}" for i in range(4)]
                paper = ", ".join(f"{x:.1f}" for x in PAPER[name][j]) + f"; {PAPER_SUMS[name][j]:.1f}"
                lab = f"{label} (proposed)" if label == "DCPG" else label
                rows.append(
                    [
                        f"{name}: {lab}",
                        *cells,
                        f"{fmt(r['sum_mean'][j], 3)} +- {fmt(r['sum_std'][j], 2)}",
                        paper,
                    ]
                )
        return cols, rows

    @staticmethod
    def readme_tables(results: dict) -> list[tuple[str, list[str], list[list[str]]]]:
        """Table 1 in the paper's layout, for the README."""
        p = results["protocol"]
        title = (
            f"**Paper 004 Table 1 on MiniWorld** (`reproduce zeng2021-navigation --full`): mean safe flight "
            f"in metres, mean +- std over {p['seeds']} seeds, {p['iters']} episodes per agent (the paper: "
            "4000), beside the paper's values (PEDRA units); Env0-3 = hallway, rooms, hall, pyramid."
        )
        return [(title, *Navigation.table(results))]

    @staticmethod
    def extra_tables(results: dict) -> list[tuple[str, list[str], list[list[str]]]]:
        p = results["protocol"]
        cols = ["", "paper", "here"]
        rows = [
            ["environments", ", ".join(PAPER_ENVS) + " (PEDRA, Unreal)", ", ".join(results["environments"])],
            ["episodes per agent", "4000", str(p["iters"])],
            ["seeds", "not stated", str(p["seeds"])],
            ["camera", "103x103 RGB", f"{p['resolution']}x{p['resolution']} RGB"],
            ["episode length", "until a collision", f"until a collision, at most {p['max_cycles']} steps"],
            ["evaluation", "not stated", f"{p['eval_episodes']} episodes per policy and environment"],
        ]
        crash_cols = ["policy", *(f"Env{i}" for i in range(4))]
        crash_rows = [
            [f"{name}: {label}", *(f"{100 * x:.0f}%" for x in r["crashed_mean"][j])]
            for name, r in results["estimators"].items()
            for j, label in enumerate(r["rows"])
        ]
        return [
            ("Protocol (what was cut):", cols, rows),
            (
                "Evaluation episodes that ended in a collision (the others reached the "
                f"{p['max_cycles']}-step limit: their distance is a lower bound of the safe flight), mean "
                "over seeds:",
                crash_cols,
                crash_rows,
            ),
        ]


def _training_series(name: str, dcpg: list[DCPGRun], sa: list[DCPGRun]) -> dict:
    """Fig. 3's curves: mean training-episode distance between evaluations, per environment."""
    its = dcpg[0].column("iteration").astype(int)
    keep = its > 0  # no training episode before iteration 0's evaluation
    out = {}
    for i in range(4):
        key = f"train_distance_agent_{i}"
        out[f"{name} SA-{i} in Env{i}"] = (its[keep], np.stack([a.column(key)[keep] for a in sa]))
        out[f"{name} DCPG agent {i} in Env{i}"] = (its[keep], np.stack([d.column(key)[keep] for d in dcpg]))
    return out


def _figures(ctx: Context, results: dict, series: dict) -> None:
    pyplot = plt()
    if pyplot is None:
        return
    names = list(results["estimators"])
    envs = results["environments"]
    # Table 1 as heat maps
    fig, axes = pyplot.subplots(1, len(names), figsize=(3.4 * len(names) + 1.0, 4.4), constrained_layout=True)
    vmax = max(max(max(row) for row in results["estimators"][n]["mean"]) for n in names) or 1.0
    for ax, name in zip(np.atleast_1d(axes), names):
        r = results["estimators"][name]
        m = np.vstack([r["initial_mean"], r["mean"]])
        im = ax.imshow(m, vmin=0, vmax=vmax, cmap="viridis")
        ax.axhline(0.5, color="w", lw=2)
        for j in range(len(m)):
            for i in range(4):
                ax.text(i, j, f"{m[j, i]:.1f}", ha="center", va="center", fontsize=8,
                        color="w" if m[j, i] < 0.6 * vmax else "k")  # fmt: skip
        ax.set_xticks(range(4), [f"Env{i}\n{e}" for i, e in enumerate(envs)], fontsize=8)
        ax.set_yticks(range(len(m)), ["untrained", *r["rows"]])
        ax.set_title(f"{name}: MSF (m), mean of {len(r['seeds'])} seeds", fontsize=9)
    fig.colorbar(im, ax=list(np.atleast_1d(axes)), fraction=0.03, label="MSF (m)")
    p = results["protocol"]
    fig.suptitle(
        f"Paper 004 Table 1 on MiniWorld: each policy in every environment\n({p['iters']} episodes per "
        f"agent, {p['resolution']}x{p['resolution']} frames, at most {p['max_cycles']} steps)",
        fontsize=10,
    )
    fig.savefig(ctx.out / "zeng2021_nav_table1.png", dpi=110)
    pyplot.close(fig)
    # Fig. 3: MSF of the training episodes (REINFORCE)
    name = "REINFORCE" if "REINFORCE" in names else names[0]
    fig, axes = pyplot.subplots(1, 4, figsize=(16, 3.6), sharey=True)
    for i, ax in enumerate(axes):
        for label, color in ((f"{name} SA-{i} in Env{i}", "C1"), (f"{name} DCPG agent {i} in Env{i}", "C0")):
            its, Y = series[label]
            if len(its) == 0:
                continue
            m = Y.mean(axis=0)
            sd = Y.std(axis=0, ddof=1) if len(Y) > 1 else np.zeros_like(m)
            ax.plot(its, m, color=color, marker="o", ms=3, label=label.split(" ", 1)[1])
            ax.fill_between(its, m - sd, m + sd, color=color, alpha=0.2)
        ax.set(xlabel="episode (iteration)", title=f"Env{i} ({envs[i]})")
        ax.legend(fontsize=7)
    axes[0].set_ylabel("training MSF (m)")
    fig.suptitle(
        f"Paper 004 Fig. 3 on MiniWorld ({name}): mean safe flight of the training episodes between "
        f"evaluations, mean +- std over {len(results['estimators'][name]['seeds'])} seeds",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(ctx.out / "zeng2021_nav_fig3.png", dpi=110)
    pyplot.close(fig)
