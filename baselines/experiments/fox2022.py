"""Paper 001 (Fox et al. 2022, *Independent Natural Policy Gradient Always Converges in Markov
Potential Games*): IPG vs INPG on the distancing game (Figs. 2-3) and the congestion game
(Figs. 4-6), under two protocols side by side.

* **The authors' code** (willoverman/MPG_experiments), as it runs: their game, their Monte Carlo
  estimator (:class:`~baselines.sampler.ForcedActionEstimator`: per-state rollouts, every action
  forced; mean returns for the distancing game, visit sums for the congestion game), 10 samples,
  T = 20, gamma = 0.99, eta = 1e-4, the uniform start (theta = 1), projected gradient on direct
  probabilities as "IPG", and their stop rules (L1 change < 1e-5 for NPG, < 1e-15 for projected
  PG, checked one iteration behind). Their congestion game is not the DAG of the paper's text but
  ``graph="ring", n_layers=1, load="vertex"``: the state is the unit every agent occupies.
* **Ours**: the paper's text where it is explicit -- the DAG of Example 1 (congestion), batches of 20,
  T = 20, gamma = 0.99, eta = 1e-4 -- with our on-policy Monte Carlo estimator, softmax IPG, random
  N(0, 1) initial logits (the uniform policy is an exact Nash equilibrium of both congestion games,
  so exact advantages never move from it) and no stop rule (a fixed budget).

Beside paper 001's L1-accuracy (the distance to each run's own final policy, which is 0 at the end
by definition and cannot tell an equilibrium from any other endpoint) we show the exact Nash gap of
every iterate and where each run ends.
"""

from __future__ import annotations

import json
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import pettingzoo

import mpg_envs
from baselines.experiments.common import (
    L1_FLOOR,
    Context,
    Curve,
    column,
    first_below,
    fmt,
    fmt_range,
    gap_value,
    iterations,
    l1_curve,
    plt,
    run_grid,
    stack,
    write_curves,
)
from baselines.train import RunResult, TrainConfig
from mpg_envs import exact
from mpg_envs.congestion.env import AUTHORS_CODE_GAME

__all__ = ["Distancing", "Congestion", "endpoint", "equilibrium_tolerance"]

#: A run ends at an equilibrium when its exact Nash gap at mu is at most this fraction of the
#: game's value scale max|r| / (1 - gamma).
EQ_FRACTION = 1e-3
ALGO_COLOR = {"IPG": "C0", "INPG": "C1"}
AUTHORS, OURS = "authors' code", "ours"


# ----------------------------------------------------------------------------------- endpoints
@lru_cache(maxsize=16)
def _env(env_id: str, kwargs: str):
    env = pettingzoo.make("parallel", env_id, **json.loads(kwargs))
    return env.unwrapped, env.unwrapped.model()


def env_and_model(cfg: TrainConfig):
    """The (cached) unwrapped env and exact model of a config."""
    return _env(cfg.env, json.dumps(cfg.env_kwargs, sort_keys=True))


def equilibrium_tolerance(model) -> float:
    """EQ_FRACTION * max|r| / (1 - gamma): the Nash gap under which a run counts as an equilibrium."""
    return EQ_FRACTION * float(np.abs(model.R).max()) / (1.0 - model.gamma)


def _split_pattern(env, model, pol) -> str:
    """The most likely split of the agents over the resources they choose among, weighted by mu
    (e.g. "2-2", "3-1"), and its probability."""
    dyn = env.dynamics
    joint = model.joint_actions
    jp = exact.joint_policy(model, pol)
    weight: dict[str, float] = {}
    for s in np.flatnonzero(model.mu > 0):
        st = np.repeat(model.states[s][None], len(joint), axis=0)
        res, n_res = dyn._resources(dyn.chosen_edges(st, joint))
        counts = dyn._counts(res, n_res)  # (A, n_res)
        available = np.unique(dyn._resources(dyn.edge_of[model.states[s]].ravel())[0])
        pats = -np.sort(-counts[:, available], axis=1)
        for p, w in zip(map(tuple, pats), model.mu[s] * jp[s]):
            key = "-".join(map(str, p))
            weight[key] = weight.get(key, 0.0) + float(w)
    best = max(weight, key=weight.get)
    return best if weight[best] > 0.99 else f"mixed (mode {best})"


def _facility_counts(model, pol) -> str:
    """Expected number of agents at each facility in each state, e.g. "(0,0,4,4)/(2,2,2,2)"."""
    parts = []
    for s in range(model.n_states):
        c = sum(np.asarray(p[s], dtype=float) for p in pol)
        parts.append("(" + ",".join(f"{x:.0f}" if abs(x - round(x)) < 0.05 else f"{x:.1f}" for x in c) + ")")
    return "/".join(parts)


def endpoint(cfg: TrainConfig, res: RunResult) -> dict:
    """Where a run ends: outcome label, exact Nash gap, whether it is an equilibrium."""
    env, model = env_and_model(cfg)
    pol = [np.asarray(p, dtype=np.float64) for p in res.policies]
    pol = [p / p.sum(axis=1, keepdims=True) for p in pol]
    gap = exact.nash_gap(model, pol)
    if cfg.env == "mpg/Distancing-v0":
        label = _facility_counts(model, pol)
    else:
        label = _split_pattern(env, model, pol)
    return {
        "outcome": label,
        "nash_gap": gap_value(gap.gap),
        "nash_gap_worst": gap_value(gap.worst),
        "equilibrium": bool(gap.gap <= equilibrium_tolerance(model)),
    }


# ----------------------------------------------------------------------------------- summaries
def _summarise(curve: Curve, runs: list[RunResult]) -> dict:
    model = env_and_model(curve.configs[0])[1]
    tol = equilibrium_tolerance(model)
    per_run = []
    for cfg, r in zip(curve.configs, runs):
        its = iterations(r)
        end = endpoint(cfg, r)
        per_run.append(
            {
                "seed": cfg.seed,
                "stopped": r.stopped,
                "stopped_at": int(its[-1]) if r.stopped else None,
                "final_iteration": int(its[-1]),
                "iterations_to_equilibrium": first_below(column(r, "nash_gap"), its, tol),
                **end,
                "run_dir": Path(r.run_dir).name,
            }
        )
    outcomes: dict[str, int] = {}
    for p in per_run:
        key = p["outcome"] + (" (equilibrium)" if p["equilibrium"] else " (not an equilibrium)")
        outcomes[key] = outcomes.get(key, 0) + 1
    gaps = [p["nash_gap"] for p in per_run]
    return {
        **curve.meta,
        "label": curve.label,
        "runs": len(runs),
        "equilibrium_tolerance": tol,
        "stopped": sum(p["stopped"] for p in per_run),
        "stop_iterations": [p["stopped_at"] for p in per_run],
        "at_equilibrium": sum(p["equilibrium"] for p in per_run),
        "endpoints": dict(sorted(outcomes.items(), key=lambda kv: -kv[1])),
        "final_nash_gap": {"min": min(gaps), "median": float(np.median(gaps)), "max": max(gaps)},
        "iterations_to_equilibrium": [p["iterations_to_equilibrium"] for p in per_run],
        "config": {k: v for k, v in curve.configs[0].__dict__.items() if k not in ("seed", "out")},
        "per_run": per_run,
    }


# ----------------------------------------------------------------------------------- figures
def _figure(path: Path, title: str, groups: list[tuple[str, list[Curve]]], results, summaries) -> None:
    pyplot = plt()
    if pyplot is None:
        return
    fig, axes = pyplot.subplots(len(groups), 4, figsize=(22, 4.2 * len(groups)), squeeze=False)
    for g, (gtitle, curves) in enumerate(groups):
        ax_tr, ax_mean, ax_gap, ax_end = axes[g]
        for c in curves:
            runs, summ = results[c.label], summaries[c.label]
            for r, pr in zip(runs, summ["per_run"]):
                its, L = iterations(r), l1_curve(r)
                # the last point is the final policy itself (L1 = 0 by definition): not drawn
                ax_tr.semilogy(
                    its[:-1], np.maximum(L[:-1], L1_FLOOR), c.style, color=c.color, lw=0.8, alpha=0.7
                )
                gap = np.maximum(column(r, "nash_gap"), L1_FLOOR)
                ax_gap.semilogy(its, gap, c.style, color=c.color, lw=0.8, alpha=0.7)
                ax_gap.plot(
                    its[-1],
                    gap[-1],
                    "o" if pr["equilibrium"] else "x",
                    color=c.color,
                    ms=6,
                    mfc="none" if pr["equilibrium"] else c.color,
                )
            L = stack([l1_curve(r) for r in runs])
            its = max((iterations(r) for r in runs), key=len)
            m, s = L.mean(axis=0), L.std(axis=0)
            ax_mean.plot(its, m, c.style, color=c.color, label=c.label)
            ax_mean.fill_between(its, np.maximum(m - s, 0), m + s, color=c.color, alpha=0.2)
            ax_gap.plot([], [], c.style, color=c.color, label=c.label)
        tol = summaries[curves[0].label]["equilibrium_tolerance"]
        ax_gap.axhline(tol, color="0.4", lw=0.8, ls=":")
        ax_gap.text(
            0.99,
            tol,
            " equilibrium tolerance",
            transform=ax_gap.get_yaxis_transform(),
            ha="right",
            va="bottom",
            fontsize=7,
            color="0.3",
        )
        ax_tr.set(
            title=f"{gtitle}: L1-accuracy, every run",
            xlabel="iteration",
            ylabel="L1 to the run's final policy",
        )
        ax_tr.text(
            0.01,
            0.02,
            "final point (L1 = 0 by definition) not drawn",
            transform=ax_tr.transAxes,
            fontsize=7,
            color="0.3",
        )
        ax_mean.set(title=f"{gtitle}: L1-accuracy, mean +- std", xlabel="iteration", ylabel="L1-accuracy")
        ax_mean.legend(fontsize=8)
        ax_gap.set(
            title=f"{gtitle}: exact Nash gap (o equilibrium, x not)",
            xlabel="iteration",
            ylabel="Nash gap at mu",
        )
        ax_gap.legend(fontsize=8)
        _endpoint_bars(ax_end, curves, summaries, gtitle)
    fig.suptitle(title, fontsize=13)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(path, dpi=100)
    pyplot.close(fig)


def _endpoint_bars(ax, curves: list[Curve], summaries: dict, title: str) -> None:
    labels: list[str] = []
    for c in curves:
        for k in summaries[c.label]["endpoints"]:
            if k not in labels:
                labels.append(k)
    x = np.arange(len(labels))
    width = 0.8 / len(curves)
    for j, c in enumerate(curves):
        counts = [summaries[c.label]["endpoints"].get(k, 0) for k in labels]
        ax.bar(x + (j - (len(curves) - 1) / 2) * width, counts, width, color=c.color, label=c.label)
    ax.set_xticks(
        x,
        [
            k.replace(" (", "\n(", 1) if not k.startswith("mixed") else k.replace(") (", ")\n(")
            for k in labels
        ],
        fontsize=7,
    )
    ax.set(title=f"{title}: where the runs end", ylabel="runs")
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.legend(fontsize=8)


# ----------------------------------------------------------------------------------- protocols
def _authors(env: str, env_kwargs: dict, estimator: str, out: Path, iters: dict) -> dict[str, TrainConfig]:
    base = TrainConfig(
        env=env,
        env_kwargs=env_kwargs,
        algo_kwargs={"eta": 1e-4},
        estimator=estimator,
        estimator_kwargs={"horizon": 20, "samples": 10},
        init="uniform",
        eval_every=1,
        eval_log=False,
        checkpoint_every=250,
        out=str(out),
    )
    return {
        "IPG": replace(base, algo="ppg", stop_l1=1e-15, stop_rule="fox2022-pg", iters=iters["IPG"]),
        "INPG": replace(base, algo="inpg", stop_l1=1e-5, stop_rule="fox2022-npg", iters=iters["INPG"]),
    }


def _ours(env: str, env_kwargs: dict, out: Path, iters: dict, eval_every: int) -> dict[str, TrainConfig]:
    base = TrainConfig(
        env=env,
        env_kwargs=env_kwargs,
        algo_kwargs={"eta": 1e-4},
        estimator="sampled",
        estimator_kwargs={"horizon": 20, "batch": 20},
        init="normal",
        eval_every=eval_every,
        eval_log=False,
        checkpoint_every=500,
        out=str(out),
    )
    return {a: replace(base, algo=a.lower(), iters=iters[a]) for a in ("IPG", "INPG")}


def _curve(protocol: str, algo: str, n: int, cfg: TrainConfig, seeds: list[int], game: str) -> Curve:
    label = f"{algo} N={n} ({protocol})"
    style = "-" if protocol == AUTHORS else "--"
    meta = {"protocol": protocol, "algorithm": algo, "n_agents": n, "game": game}
    return Curve(label, [replace(cfg, seed=s) for s in seeds], ALGO_COLOR[algo], style, meta)


def _run(name: str, title: str, ctx: Context, groups: list[tuple[str, list[Curve]]]) -> dict:
    curves = [c for _, cs in groups for c in cs]
    results = run_grid(name, curves, ctx)
    summaries = {c.label: _summarise(c, results[c.label]) for c in curves}
    _figure(ctx.out / f"{name.replace('-', '_')}.png", title, groups, results, summaries)
    series = {
        c.label: (
            max((iterations(r) for r in results[c.label]), key=len),
            stack([l1_curve(r) for r in results[c.label]]),
        )
        for c in curves
    }
    write_curves(ctx.out / "curves.csv", series, band="std")
    return {"curves": summaries, "equilibrium_fraction": EQ_FRACTION}


# ----------------------------------------------------------------------------------- tables
def _iters_text(s: dict) -> str:
    if s["stopped"] == s["runs"]:
        return f"stops after {fmt_range(s['stop_iterations'])}"
    if s["stopped"]:
        return f"{s['stopped']}/{s['runs']} stop (after {fmt_range(s['stop_iterations'])})"
    return f"no stop rule, {s['per_run'][0]['final_iteration']} iterations"


def _end_text(s: dict) -> str:
    parts = [f"{n}x {k}" for k, n in s["endpoints"].items()]
    return f"{s['at_equilibrium']}/{s['runs']} at an equilibrium: " + "; ".join(parts)


def table(results: dict) -> tuple[list[str], list[list[str]]]:
    """The detailed table: one row per protocol, algorithm and N."""
    cols = [
        "protocol",
        "game",
        "algorithm",
        "N",
        "runs",
        "iterations",
        "exact Nash gap at the end (min-median-max)",
        "iterations to equilibrium",
        "endpoints",
    ]
    rows = []
    for s in results["curves"].values():
        g = s["final_nash_gap"]
        rows.append(
            [
                s["protocol"],
                s["game"],
                s["algorithm"],
                str(s["n_agents"]),
                str(s["runs"]),
                _iters_text(s),
                f"{fmt(g['min'])} / {fmt(g['median'])} / {fmt(g['max'])}",
                fmt_range(s["iterations_to_equilibrium"])
                + (
                    ""
                    if None not in s["iterations_to_equilibrium"]
                    else f" ({s['iterations_to_equilibrium'].count(None)} never)"
                ),
                _end_text(s),
            ]
        )
    return cols, rows


def _by(results: dict, protocol: str, algo: str, n: int) -> dict | None:
    for s in results["curves"].values():
        if (s["protocol"], s["algorithm"], s["n_agents"]) == (protocol, algo, n):
            return s
    return None


def _measured(results: dict, protocol: str, n: int) -> str:
    out = []
    for algo in ("IPG", "INPG"):
        s = _by(results, protocol, algo, n)
        if s is None:
            continue
        name = "projected IPG" if s["config"]["algo"] == "ppg" else algo
        g = s["final_nash_gap"]
        out.append(
            f"{name} {_iters_text(s)}; {s['at_equilibrium']}/{s['runs']} end at an equilibrium "
            f"(final Nash gap {fmt_range([g['min'], g['max']])})"
        )
    return "; ".join(out)


class Congestion:
    """``fox2022-congestion``: paper 001 Figs. 4-6."""

    NAME = "fox2022-congestion"
    TITLE = "Paper 001, congestion game (Figs. 4-6)"
    PAPER = "Fox et al. 2022, §4.2"
    DESCRIPTION = (
        "IPG vs INPG, N = 4 (and INPG for N = 8). **Authors' code**: their game (`Congestion-v0` with "
        "`graph='ring', n_layers=1, load='vertex'`: the state is every agent's unit, 2^N states, "
        "uniform mu), "
        "their visit-sum forced-action estimator (10 samples, T = 20), uniform start, eta = 1e-4, projected "
        "gradient as IPG, their stop rules (NPG: L1 change < 1e-5; projected PG: < 1e-15, one iteration "
        "behind). **Ours**: the DAG of the paper's Example 1 (`Congestion-v0` defaults), our on-policy "
        "estimator (batches of 20, T = 20), N(0, 1) initial logits, eta = 1e-4, softmax IPG, no stop rule. "
        "A run ends at an equilibrium when its exact Nash gap is at most 1e-3 x max|r| / (1 - gamma) = 0.1."
    )

    @staticmethod
    def run(ctx: Context) -> dict:
        seeds = ctx.seed_list(10, 3)
        runs = ctx.out / "runs"
        env, its = "mpg/Congestion-v0", {"IPG": 3000, "INPG": 500}
        auth4 = _authors(env, {"n_agents": 4, **AUTHORS_CODE_GAME}, "forced_visit_sum", runs, its)
        auth8 = _authors(env, {"n_agents": 8, **AUTHORS_CODE_GAME}, "forced_visit_sum", runs, its)
        it4, it8 = (3000, 1500) if ctx.full else (1000, 500)
        ours4 = _ours(env, {"n_agents": 4}, runs, {"IPG": it4, "INPG": it4}, 10)
        ours8 = _ours(env, {"n_agents": 8}, runs, {"IPG": it8, "INPG": it8}, 10)
        ring, dag = "ring (authors' code)", "DAG (paper's text)"
        groups = [
            ("Authors' code, N = 4", [_curve(AUTHORS, a, 4, auth4[a], seeds, ring) for a in ("IPG", "INPG")]),
            ("Authors' code, N = 8", [_curve(AUTHORS, "INPG", 8, auth8["INPG"], seeds, ring)]),
            ("Ours, N = 4", [_curve(OURS, a, 4, ours4[a], seeds, dag) for a in ("IPG", "INPG")]),
            ("Ours, N = 8", [_curve(OURS, "INPG", 8, ours8["INPG"], seeds, dag)]),
        ]
        return _run(Congestion.NAME, "Paper 001, congestion game: the authors' code and ours", ctx, groups)

    @staticmethod
    def headline(results: dict) -> list[tuple[str, str, str]]:
        return [
            (
                "congestion N = 4, authors' code (their 2^N-state game and estimator, uniform start)",
                "IPG converges in ~2000 iterations, INPG in ~50",
                _measured(results, AUTHORS, 4),
            ),
            (
                "congestion N = 8, authors' code",
                "INPG converges in < 100 iterations",
                _measured(results, AUTHORS, 8),
            ),
            (
                "congestion N = 4, ours (paper's DAG, on-policy estimate, random start, same eta)",
                "as above",
                _measured(results, OURS, 4),
            ),
            ("congestion N = 8, ours", "as above", _measured(results, OURS, 8)),
        ]

    table = staticmethod(table)


class Distancing:
    """``fox2022-distancing``: paper 001 Figs. 2-3."""

    NAME = "fox2022-distancing"
    TITLE = "Paper 001, distancing game (Figs. 2-3)"
    PAPER = "Fox et al. 2022, §4.1"
    DESCRIPTION = (
        "IPG vs INPG on the distancing game (N = 8, `Distancing-v0` defaults: the authors' game). "
        "**Authors' code**: their per-state forced-action estimator with mean returns (10 samples, T = 20), "
        "uniform start, eta = 1e-4, projected gradient as IPG, their stop rules, at most 1000 iterations. "
        "**Ours**: our on-policy estimator (batches of 20, T = 20), N(0, 1) initial logits, eta = 1e-4, "
        "softmax IPG, no stop rule. Endpoints are the expected number of agents at facilities (A, B, C, D) "
        "in the safe / distancing state; a run ends at an equilibrium when its exact Nash gap is at most "
        "1e-3 x max|r| / (1 - gamma) = 9.9."
    )

    @staticmethod
    def run(ctx: Context) -> dict:
        seeds = ctx.seed_list(10, 3)
        runs = ctx.out / "runs"
        env = "mpg/Distancing-v0"
        auth = _authors(env, {}, "forced", runs, {"IPG": 1000, "INPG": 1000})
        iters = 6000 if ctx.full else 1500
        ours = _ours(env, {}, runs, {"IPG": iters, "INPG": iters}, 25)
        game = "distancing"
        groups = [
            ("Authors' code", [_curve(AUTHORS, a, 8, auth[a], seeds, game) for a in ("IPG", "INPG")]),
            ("Ours", [_curve(OURS, a, 8, ours[a], seeds, game) for a in ("IPG", "INPG")]),
        ]
        return _run(Distancing.NAME, "Paper 001, distancing game: the authors' code and ours", ctx, groups)

    @staticmethod
    def headline(results: dict) -> list[tuple[str, str, str]]:
        return [
            (
                "distancing N = 8, authors' code (forced-action estimator, uniform start)",
                "INPG converges faster than IPG; runs reach (0,0,4,4)/(2,2,2,2)",
                _measured(results, AUTHORS, 8),
            ),
            (
                "distancing N = 8, ours (on-policy estimate, random start, same eta)",
                "as above",
                _measured(results, OURS, 8),
            ),
        ]

    table = staticmethod(table)


def _registered() -> None:  # the env ids must be registered in spawned workers too
    assert "mpg/Congestion-v0" in mpg_envs.ENV_IDS


_registered()
