"""Paper 001 (Fox et al. 2022, *Independent Natural Policy Gradient Always Converges in Markov
Potential Games*): IPG vs INPG on the distancing game (Figs. 2-3) and the congestion game
(Figs. 4-6), under two protocols side by side.

* **The authors' code** (willoverman/MPG_experiments, commit 9bf9a97), as it runs: their game,
  their Monte Carlo estimator (:class:`~baselines.sampler.ForcedActionEstimator`: per-state
  rollouts, every action forced; mean returns for the distancing game, visit sums for the
  congestion game), 10 samples, T = 20, gamma = 0.99, eta = 1e-4, the uniform start
  (theta = 1), projected gradient on direct probabilities as "IPG", their stop rules (L1 change
  < 1e-5 for NPG, < 1e-15 for projected PG, checked one iteration behind) and their iteration caps
  (:data:`AUTHORS_CAPS`). Their congestion game is not the DAG of the paper's text but
  ``graph="ring", n_layers=1, load="vertex"``: the state is the unit every agent occupies.
* **Ours**: the paper's text where it is explicit -- the DAG of Example 1 (congestion), batches of 20,
  T = 20, gamma = 0.99, eta = 1e-4 -- with our on-policy Monte Carlo estimator, softmax IPG, random
  N(0, 1) initial logits (the uniform policy is an exact Nash equilibrium of both congestion games,
  so exact advantages never move from it) and no stop rule (a fixed budget).

Beside paper 001's L1-accuracy (the distance to each run's own final policy, which is 0 at the end
by definition and cannot tell an equilibrium from any other endpoint) we show the exact Nash gap of
every iterate, where each run ends, and when runs stop. Whether runs end at an equilibrium varies
from seed to seed, so ``--full`` runs 30 seeds per curve and reports each fraction with its Wilson
95% interval (:mod:`baselines.experiments.stats`).

**Why the authors' congestion runs "converge" quickly** (:func:`lock_in`): their visit-sum value of
a state grows with how often the runs visit it, so an agent that happens to prefer a unit sees
inflated values for the states where it sits there, and its estimated advantage favours that unit
further. :meth:`~baselines.sampler.ForcedActionEstimator.expected` gives the estimator's exact
expectation: on their N = 4 game, one agent's logit bias of 0.2 towards a unit (the others uniform)
gives an expected advantage difference of +3.1 where the true one is 0.

Every aggregate of a summary is computed by :func:`rederive` from the per-run records the summary
stores (``run`` calls it too), so a summary cannot disagree with its runs.
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
    ROUNDOFF_GAP,
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
from baselines.experiments.stats import fmt_fraction, fraction
from baselines.train import RunResult, TrainConfig
from mpg_envs import exact
from mpg_envs.congestion.env import AUTHORS_CODE_GAME

__all__ = [
    "Distancing",
    "Congestion",
    "endpoint",
    "equilibrium_tolerance",
    "lock_in",
    "rederive",
    "AUTHORS_CAPS",
]

#: A run ends at an equilibrium when its exact Nash gap at mu is at most this fraction of the
#: game's value scale max|r| / (1 - gamma).
EQ_FRACTION = 1e-3
#: A policy is called pure when every agent plays one action with at least this probability in
#: every state (distancing) or when one split of the agents has at least this probability
#: (congestion); otherwise its endpoint label says "mixed".
PURE = 0.99
#: Seeds per curve: ``--full`` and the short default.
FULL_SEEDS, SHORT_SEEDS = 30, 3
#: The authors' iteration caps, from the calls at the end of their scripts (commit 9bf9a97):
#: ``congestionMPG_plots.py`` (distancing, projected PG) ``full_experiment(10, 1000, ...)``;
#: ``npg.py`` (distancing, NPG) ``full_experiment(5, 500, ...)``; ``pg_routing.py`` (congestion,
#: projected PG) ``full_experiment(3, 2000, ...)``; ``npg_routing.py`` (congestion, NPG)
#: ``full_experiment(10, 500, ...)``. Their projected PG loops ``for t in range(max_iters)`` over
#: updates and returns pi_max_iters: ``iters = max_iters``. Their NPG records pi_t before
#: updating and returns the last recorded policy, pi_(max_iters - 1): ``iters = max_iters - 1``.
AUTHORS_CAPS = {
    "distancing": {"IPG": 1000, "INPG": 500 - 1},
    "congestion": {"IPG": 2000, "INPG": 500 - 1},
}
#: The lock-in example: the authors' N = 4 congestion game, agent 0's logit of unit 0 raised by
#: this much in every state, the other agents uniform.
LOCK_IN_BIAS = 0.2
ALGO_COLOR = {"IPG": "C0", "INPG": "C1"}
AUTHORS, OURS = "authors' code", "ours"


# ----------------------------------------------------------------------------------- endpoints
@lru_cache(maxsize=16)
def _env(env_id: str, kwargs: str):
    env = pettingzoo.make("parallel", env_id, **json.loads(kwargs))
    return env.unwrapped, env.unwrapped.model()


def env_and_model(cfg: TrainConfig | dict):
    """The (cached) unwrapped env and exact model of a config (a TrainConfig or its dict)."""
    env, kw = (cfg["env"], cfg["env_kwargs"]) if isinstance(cfg, dict) else (cfg.env, cfg.env_kwargs)
    return _env(env, json.dumps(kw, sort_keys=True))


def equilibrium_tolerance(model) -> float:
    """EQ_FRACTION * max|r| / (1 - gamma): the Nash gap under which a run counts as an equilibrium."""
    return EQ_FRACTION * float(np.abs(model.R).max()) / (1.0 - model.gamma)


def _split_pattern(env, model, pol) -> str:
    """The most likely split of the agents over the resources they choose among, weighted by mu
    (e.g. "2-2", "3-1"), or "mixed (mode 2-2)" when no split has probability >= PURE."""
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
    return best if weight[best] >= PURE else f"mixed (mode {best})"


def _facility_counts(model, pol) -> str:
    """Agents at each facility in each state, e.g. "(0,0,4,4)/(2,2,2,2)" (safe / distancing).

    A pure policy (every agent plays one facility with probability >= PURE in each state) is
    labelled by where the agents play; a mixed one by its expected counts rounded to integers,
    prefixed "mixed ~" (so runs near one profile share a label; the Nash gap tells them apart).
    """
    pol = [np.asarray(p, dtype=float) for p in pol]
    pure = all(p.max(axis=1).min() >= PURE for p in pol)
    parts = []
    for s in range(model.n_states):
        if pure:
            c = np.bincount([int(p[s].argmax()) for p in pol], minlength=pol[0].shape[1])
        else:
            c = np.rint(sum(p[s] for p in pol)).astype(int)
        parts.append("(" + ",".join(map(str, c)) + ")")
    return "/".join(parts) if pure else "mixed ~" + "/".join(parts)


def endpoint(cfg: TrainConfig, res: RunResult) -> dict:
    """Where a run ends: outcome label and exact Nash gap (at mu and worst state)."""
    env, model = env_and_model(cfg)
    pol = [np.asarray(p, dtype=np.float64) for p in res.policies]
    pol = [p / p.sum(axis=1, keepdims=True) for p in pol]
    gap = exact.nash_gap(model, pol)
    if cfg.env == "mpg/Distancing-v0":
        label = _facility_counts(model, pol)
    else:
        label = _split_pattern(env, model, pol)
    return {"outcome": label, "nash_gap": gap_value(gap.gap), "nash_gap_worst": gap_value(gap.worst)}


# ----------------------------------------------------------------------------------- lock-in
def lock_in(n_agents: int = 4, bias: float = LOCK_IN_BIAS, horizon: int = 20, layers: int = 2) -> dict:
    """The authors' visit-sum estimator at a biased policy of their congestion game, exactly.

    Agent 0's logit of unit 0 exceeds that of unit 1 by ``bias`` in every state; the other agents
    are uniform. Then every agent's reward depends only on the others' (uniform) choices, so agent 0's
    true advantage difference A(s, unit 0) - A(s, unit 1) is 0 in every state. The estimator's
    expectation (:meth:`~baselines.sampler.ForcedActionEstimator.expected`; it does not depend on
    the number of samples) is not: the states where agent 0 sits at unit 0 are visited more, so
    their visit-sum values, and the forced Q-values of moving there, are larger.

    Args:
        n_agents: N of the authors' game (``Congestion-v0`` with ``AUTHORS_CODE_GAME``).
        bias: Agent 0's logit bias towards unit 0.
        horizon: T of the estimator (the authors: 20).
        layers: Visit-sum layers (the authors: 2).

    Returns:
        ``{"n_agents", "bias", "horizon", "layers", "expected_difference", "true_difference",
        "gain", "inpg_growth"}``: the expected and true advantage differences of agent 0 (the same
        in every state; the mean over states), ``gain`` = expected difference / bias at a bias of
        1e-3 (the linear response), and ``inpg_growth`` = 1 + eta / (1 - gamma) * gain, the
        factor by which INPG's expected update (eta = 1e-4) multiplies a small bias per iteration.
    """
    from baselines.sampler import ForcedActionEstimator

    env, model = _env(
        "mpg/Congestion-v0", json.dumps({"n_agents": n_agents, **AUTHORS_CODE_GAME}, sort_keys=True)
    )
    est = ForcedActionEstimator(
        env.dynamics, model.gamma, horizon=horizon, rng=0, value="visit_sum", layers=layers
    )

    def differences(b: float) -> tuple[float, float]:
        pol = exact.uniform_policy(model)
        row = np.exp([b, 0.0]) / np.exp([b, 0.0]).sum()
        pol[0] = np.tile(row, (model.n_states, 1))
        a = est.expected(model, pol).advantages()[0]
        t = exact.advantages(model, pol)[0]
        return float((a[:, 0] - a[:, 1]).mean()), float((t[:, 0] - t[:, 1]).mean())

    expected, true = differences(bias)
    gain = differences(1e-3)[0] / 1e-3
    return {
        "n_agents": n_agents,
        "bias": bias,
        "horizon": horizon,
        "layers": layers,
        "expected_difference": expected,
        "true_difference": 0.0 if abs(true) < ROUNDOFF_GAP else true,
        "gain": gain,
        "inpg_growth": 1.0 + 1e-4 / (1.0 - model.gamma) * gain,
    }


# ----------------------------------------------------------------------------------- summaries
def _quantiles(values: list) -> dict | None:
    """min / quartiles / max of the non-None values (None if there are none)."""
    x = np.array([v for v in values if v is not None], dtype=float)
    if x.size == 0:
        return None
    q = np.percentile(x, [0, 25, 50, 75, 100])
    return {"n": int(x.size), "min": q[0], "q1": q[1], "median": q[2], "q3": q[3], "max": q[4]}


def _milestones(iters: int, eval_every: int, parts: int = 4) -> list[int]:
    """0 and ``parts`` evenly spaced evaluated iterations up to ``iters``."""
    return sorted({int(k // eval_every * eval_every) for k in np.linspace(0, iters, parts + 1)})


def _per_run(cfg: TrainConfig, r: RunResult, tol: float, milestones: list[int]) -> dict:
    """The record a summary keeps of one run (everything the aggregates are computed from)."""
    its = iterations(r)
    gaps = column(r, "nash_gap")
    peak = int(np.argmax(gaps))
    at = []
    for k in milestones:
        idx = np.flatnonzero(its <= k)
        at.append(gap_value(gaps[idx[-1]]) if its[-1] >= k and idx.size else None)
    return {
        "seed": cfg.seed,
        "stopped": bool(r.stopped),
        "stopped_at": int(its[-1]) if r.stopped else None,
        "final_iteration": int(its[-1]),
        "iterations_to_equilibrium": first_below(gaps, its, tol),
        **endpoint(cfg, r),
        "peak_nash_gap": gap_value(gaps[peak]),
        "peak_iteration": int(its[peak]),
        "nash_gap_at": at,
        "run_dir": Path(r.run_dir).name,
    }


#: What a curve's summary stores besides its aggregates (the input of :func:`rederive`).
_CURVE_INPUTS = ("protocol", "algorithm", "n_agents", "game", "label", "config", "milestones", "per_run")


def _aggregate(curve: dict) -> dict:
    """A curve's summary from its inputs (:data:`_CURVE_INPUTS`): every number it reports."""
    model = env_and_model(curve["config"])[1]
    tol = equilibrium_tolerance(model)
    per_run = [{**p, "equilibrium": bool(p["nash_gap"] <= tol)} for p in curve["per_run"]]
    groups: dict[tuple[str, bool], list[float]] = {}
    for p in per_run:
        groups.setdefault((p["outcome"], p["equilibrium"]), []).append(p["nash_gap"])
    endpoints = [
        {"outcome": o, "equilibrium": eq, "runs": len(g), "nash_gap_min": min(g), "nash_gap_max": max(g)}
        for (o, eq), g in sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0][0], not kv[0][1]))
    ]
    gap_at = []
    for j, k in enumerate(curve["milestones"]):
        q = _quantiles([p["nash_gap_at"][j] for p in per_run])
        gap_at.append({"iteration": k, **(q or {"n": 0})})
    gaps = [p["nash_gap"] for p in per_run]
    return {
        **{k: curve[k] for k in _CURVE_INPUTS if k != "per_run"},
        "runs": len(per_run),
        "equilibrium_tolerance": tol,
        "at_equilibrium": fraction([p["equilibrium"] for p in per_run]),
        "stopped": sum(p["stopped"] for p in per_run),
        "max_iterations": curve["config"]["iters"],
        "stop_iterations": _quantiles([p["stopped_at"] for p in per_run]),
        "final_nash_gap": _quantiles(gaps),
        "iterations_to_equilibrium": _quantiles([p["iterations_to_equilibrium"] for p in per_run]),
        "never_at_equilibrium": sum(p["iterations_to_equilibrium"] is None for p in per_run),
        "nash_gap_at": gap_at,
        "peak_nash_gap": _quantiles([p["peak_nash_gap"] for p in per_run]),
        "endpoints": endpoints,
        "per_run": per_run,
    }


def rederive(results: dict) -> dict:
    """Every number of a paper-001 summary from the per-run records (and the exact lock-in
    computation) it stores: ``rederive(summary) == summary`` for an unedited summary.

    Args:
        results: A summary's ``results`` (or its inputs only: per curve the keys of
            :data:`_CURVE_INPUTS`; ``lock_in``'s arguments).

    Returns:
        The summary's ``results``.
    """
    out = {
        "curves": {k: _aggregate(c) for k, c in results["curves"].items()},
        "equilibrium_fraction": EQ_FRACTION,
    }
    if "lock_in" in results:
        li = results["lock_in"]
        out["lock_in"] = lock_in(li["n_agents"], li["bias"], li["horizon"], li["layers"])
    return out


# ----------------------------------------------------------------------------------- figures
def _log_iterations(curves: list[Curve], summaries: dict) -> bool:
    """Whether a group's runs differ in length by >= 10x (then iterations are drawn on a log axis)."""
    ends = [np.median([p["final_iteration"] for p in summaries[c.label]["per_run"]]) for c in curves]
    return max(ends) >= 10 * max(min(ends), 1)


def _figure(path: Path, title: str, groups: list[tuple[str, list[Curve]]], results, summaries) -> None:
    pyplot = plt()
    if pyplot is None:
        return
    fig, axes = pyplot.subplots(len(groups), 5, figsize=(28, 4.6 * len(groups)), squeeze=False)
    for g, (gtitle, curves) in enumerate(groups):
        ax_tr, ax_mean, ax_gap, ax_end, ax_stop = axes[g]
        logx = _log_iterations(curves, summaries)
        for c in curves:
            runs, summ = results[c.label], summaries[c.label]
            for r, pr in zip(runs, summ["per_run"]):
                its, L = iterations(r), l1_curve(r)
                # the last point is the final policy itself (L1 = 0 by definition): not drawn
                ax_tr.semilogy(its[:-1], np.maximum(L[:-1], 1e-12), c.style, color=c.color, lw=0.6, alpha=0.5)
                gap = np.maximum(column(r, "nash_gap"), ROUNDOFF_GAP)
                ax_gap.semilogy(its, gap, c.style, color=c.color, lw=0.6, alpha=0.5)
                ax_gap.plot(
                    its[-1],
                    gap[-1],
                    "o" if pr["equilibrium"] else "x",
                    color=c.color,
                    ms=5,
                    mfc="none" if pr["equilibrium"] else c.color,
                )
            L = stack([l1_curve(r) for r in runs])
            its = max((iterations(r) for r in runs), key=len)
            m, s = L.mean(axis=0), L.std(axis=0)
            ax_mean.plot(its, m, c.style, color=c.color, label=c.label)
            ax_mean.fill_between(its, np.maximum(m - s, 0), m + s, color=c.color, alpha=0.2)
            ms = [(q["iteration"], q["median"]) for q in summ["nash_gap_at"] if q["n"]]
            if ms:
                ax_gap.plot(
                    [k for k, _ in ms],
                    [max(v, ROUNDOFF_GAP) for _, v in ms],
                    "D",
                    color=c.color,
                    mec="k",
                    ms=6,
                    zorder=5,
                )
            ax_gap.plot([], [], c.style, color=c.color, label=c.label)
        ax_gap.plot([], [], "D", color="0.7", mec="k", label="median over the runs still running")
        tol = summaries[curves[0].label]["equilibrium_tolerance"]
        for ax in (ax_gap, ax_end):
            ax.axhline(tol, color="0.4", lw=0.8, ls=":")
            ax.text(
                0.99,
                tol,
                f"equilibrium tolerance {fmt(tol)}",
                transform=ax.get_yaxis_transform(),
                ha="right",
                va="bottom",
                fontsize=7,
                color="0.3",
            )
        if logx:
            for ax in (ax_tr, ax_mean, ax_gap):
                ax.set_xscale("symlog", linthresh=10)
                ax.set_xlim(left=0)
        xl = "iteration (log scale above 10)" if logx else "iteration"
        ax_tr.set(title=f"{gtitle}: L1-accuracy, every run", xlabel=xl, ylabel="L1 to the run's final policy")
        ax_tr.text(
            0.01,
            0.02,
            "final point (L1 = 0 by definition) not drawn",
            transform=ax_tr.transAxes,
            fontsize=7,
            color="0.3",
        )
        ax_mean.set(title=f"{gtitle}: L1-accuracy, mean +- std", xlabel=xl, ylabel="L1-accuracy")
        ax_mean.legend(fontsize=8)
        ax_gap.set(
            title=f"{gtitle}: exact Nash gap (o equilibrium, x not)",
            xlabel=xl,
            ylabel="Nash gap at mu (<= 1e-9 drawn at 1e-9)",
        )
        ax_gap.legend(fontsize=7, loc="lower left")
        _endpoint_strip(ax_end, curves, summaries, gtitle)
        _stop_panel(ax_stop, curves, summaries, gtitle, logx)
    fig.suptitle(title, fontsize=13)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(path, dpi=90)
    pyplot.close(fig)


def _wrap(label: str) -> str:
    """A tick label on short lines: "mixed ~" and each state's counts on their own line."""
    return label.replace("mixed ~", "mixed ~\n").replace(")/(", ")/\n(").replace(" (mode", "\n(mode")


def _endpoint_strip(ax, curves: list[Curve], summaries: dict, title: str) -> None:
    """Every run's final Nash gap, grouped by where it ends: the verdict is the gap against the
    tolerance, so one label can hold both equilibria and non-equilibria."""
    labels: list[str] = []
    for c in curves:
        for e in summaries[c.label]["endpoints"]:
            if e["outcome"] not in labels:
                labels.append(e["outcome"])
    width = 0.7 / len(curves)
    for j, c in enumerate(curves):
        s = summaries[c.label]
        for x, lab in enumerate(labels):
            runs = [p for p in s["per_run"] if p["outcome"] == lab]
            if not runs:
                continue
            centre = x + (j - (len(curves) - 1) / 2) * width
            jitter = np.linspace(-0.35, 0.35, len(runs)) * width if len(runs) > 1 else np.zeros(1)
            for dx, p in zip(jitter, runs):
                ax.plot(
                    centre + dx,
                    max(p["nash_gap"], ROUNDOFF_GAP),
                    "o" if p["equilibrium"] else "x",
                    color=c.color,
                    mfc="none" if p["equilibrium"] else c.color,
                    ms=5,
                )
            ax.annotate(
                str(len(runs)),
                (centre, 1.0),
                xycoords=("data", "axes fraction"),
                ha="center",
                va="bottom",
                fontsize=8,
                color=c.color,
            )
        ax.plot([], [], "o", color=c.color, mfc="none", label=c.label)
    ax.set_yscale("log")
    if len(labels) <= 4:
        ax.set_xticks(np.arange(len(labels)), [_wrap(k) for k in labels], fontsize=7)
    else:  # many endpoints: slanted one-line labels, so neighbours do not overlap
        ax.set_xticks(
            np.arange(len(labels)), labels, fontsize=7, rotation=30, ha="right", rotation_mode="anchor"
        )
    ax.set_xlim(-0.6, len(labels) - 0.4)
    ax.set(ylabel="final Nash gap (<= 1e-9 drawn at 1e-9)")
    ax.set_title(f"{title}: where the runs end (number of runs on top)", pad=14)
    ax.legend(fontsize=7, loc="best")


def _stop_panel(ax, curves: list[Curve], summaries: dict, title: str, logx: bool) -> None:
    """When runs stop (the stop rule) and from when their Nash gap stays within the tolerance."""
    rows: list[tuple[str, list[float], str]] = []
    for c in curves:
        s = summaries[c.label]
        stops = [p["stopped_at"] for p in s["per_run"] if p["stopped_at"] is not None]
        name = c.label.split(" N=")[0]
        if s["config"]["stop_l1"] > 0:
            med = f", median {fmt(float(np.median(stops)), 3)}" if stops else ""
            rows.append((f"{name} stops\n({len(stops)}/{s['runs']}{med})", stops, c.color))
        hit = [
            p["iterations_to_equilibrium"] for p in s["per_run"] if p["iterations_to_equilibrium"] is not None
        ]
        med = f", median {fmt(float(np.median(hit)), 3)}" if hit else ""
        rows.append(
            (f"{name} at equilibrium from\n({len(hit)}/{s['runs']}{med}; others never)", hit, c.color)
        )
    for y, (_, vals, color) in enumerate(rows):
        if vals:
            ax.boxplot(
                [vals],
                positions=[y],
                orientation="horizontal",
                widths=0.5,
                showfliers=False,
                medianprops={"color": "k"},
                boxprops={"color": color},
                whiskerprops={"color": color},
                capprops={"color": color},
            )
            jit = np.linspace(-0.18, 0.18, len(vals)) if len(vals) > 1 else np.zeros(1)
            ax.plot(vals, y + jit, ".", color=color, ms=4, alpha=0.7)
        else:
            ax.text(
                0.5, y, "no run", transform=ax.get_yaxis_transform(), ha="center", va="center", fontsize=8
            )
    ax.set_yticks(np.arange(len(rows)), [r[0] for r in rows], fontsize=7)
    ax.set_ylim(len(rows) - 0.4, -0.6)  # first curve on top
    ax.set_title(f"{title}: stop / equilibrium iterations", fontsize=10)
    cap = max(summaries[c.label]["max_iterations"] for c in curves)
    if logx:
        ax.set_xscale("symlog", linthresh=10)
        ax.set_xlim(0, cap * 1.05)
        ax.set_xlabel("iteration (log scale above 10)")
    else:
        if not any(r[1] for r in rows):  # nothing drawn: show the whole budget
            ax.set_xlim(0, cap * 1.02)
        ax.set_xlabel("iteration")


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


def _curve(
    protocol: str, algo: str, n: int, cfg: TrainConfig, seeds: list[int], game: str, milestones=None
) -> Curve:
    label = f"{algo} N={n} ({protocol})"
    style = "-" if protocol == AUTHORS else "--"
    if milestones is None:
        milestones = _milestones(cfg.iters, cfg.eval_every)
    meta = {"protocol": protocol, "algorithm": algo, "n_agents": n, "game": game, "milestones": milestones}
    return Curve(label, [replace(cfg, seed=s) for s in seeds], ALGO_COLOR[algo], style, meta)


def _run(name: str, title: str, ctx: Context, groups: list[tuple[str, list[Curve]]], **extra) -> dict:
    curves = [c for _, cs in groups for c in cs]
    results = run_grid(name, curves, ctx)
    inputs = {}
    for c in curves:
        tol = equilibrium_tolerance(env_and_model(c.configs[0])[1])
        config = {k: v for k, v in c.configs[0].__dict__.items() if k not in ("seed", "out")}
        if ctx.max_iters is not None:  # run_grid capped every run
            config["iters"] = min(config["iters"], ctx.max_iters)
        per_run = [_per_run(cfg, r, tol, c.meta["milestones"]) for cfg, r in zip(c.configs, results[c.label])]
        inputs[c.label] = {**c.meta, "label": c.label, "config": config, "per_run": per_run}
    summary = rederive({"curves": inputs, **extra})
    _figure(ctx.out / f"{name.replace('-', '_')}.png", title, groups, results, summary["curves"])
    series = {
        c.label: (
            max((iterations(r) for r in results[c.label]), key=len),
            stack([l1_curve(r) for r in results[c.label]]),
        )
        for c in curves
    }
    write_curves(ctx.out / "curves.csv", series, band="std")
    return summary


# ----------------------------------------------------------------------------------- tables
def _q_text(q: dict | None, digits: int = 2) -> str:
    """ "41-55 (median 44, quartiles 43-47)" from a :func:`_quantiles` dict."""
    if q is None:
        return "-"
    if q["min"] == q["max"]:
        return fmt(q["min"], digits)
    return (
        f"{fmt(q['min'], digits)}-{fmt(q['max'], digits)} (median {fmt(q['median'], digits)}, "
        f"quartiles {fmt(q['q1'], digits)}-{fmt(q['q3'], digits)})"
    )


def _iters_text(s: dict) -> str:
    if s["stopped"] == 0:
        if s["config"]["stop_l1"] > 0:
            return f"no run stops: all reach the cap of {s['max_iterations']} iterations"
        return f"no stop rule, {s['max_iterations']} iterations"
    text = f"stop after {_q_text(s['stop_iterations'], 3)} iterations"
    if s["stopped"] < s["runs"]:
        rest = s["runs"] - s["stopped"]
        return f"{s['stopped']}/{s['runs']} runs {text}; {rest} reach the cap of {s['max_iterations']}"
    return f"all runs {text}"


def _eq_text(s: dict) -> str:
    return f"{fmt_fraction(s['at_equilibrium'])} end at an equilibrium"


def _gap_path_text(s: dict) -> str:
    """ "median 0 at iteration 0, 1.2 at 20, 4.7 at 30" over the milestones where runs still run."""
    qs = [q for q in s["nash_gap_at"] if q["n"]]
    if not qs:
        return "-"
    parts = [f"{fmt(q['median'])} at {q['iteration']}" for q in qs]
    partial = [f"{q['iteration']}: {q['n']}" for q in qs if q["n"] < s["runs"]]
    text = "median " + parts[0].replace(" at ", " at iteration ") + ", " + ", ".join(parts[1:])
    return text.rstrip(", ") + (f" (runs still running at {'; '.join(partial)})" if partial else "")


def _end_text(s: dict) -> str:
    out = []
    for e in s["endpoints"]:
        verdict = "equilibrium" if e["equilibrium"] else "not an equilibrium"
        gaps = fmt_range([e["nash_gap_min"], e["nash_gap_max"]])
        out.append(f"{e['runs']}x {e['outcome']}: {verdict}, Nash gap {gaps}")
    return "; ".join(out)


def table(results: dict) -> tuple[list[str], list[list[str]]]:
    """The detailed table: one row per protocol, algorithm and N."""
    cols = [
        "protocol",
        "game",
        "algorithm",
        "N",
        "runs",
        "iterations",
        "exact Nash gap along the runs (runs still running)",
        "per-run peak of the Nash gap",
        "final Nash gap",
        "iterations to equilibrium",
        "at an equilibrium (Wilson 95% CI)",
        "endpoints (runs: verdict, final Nash gap)",
    ]
    rows = []
    for s in results["curves"].values():
        never = s["never_at_equilibrium"]
        rows.append(
            [
                s["protocol"],
                s["game"],
                s["algorithm"],
                str(s["n_agents"]),
                str(s["runs"]),
                _iters_text(s),
                _gap_path_text(s),
                _q_text(s["peak_nash_gap"]),
                _q_text(s["final_nash_gap"]),
                _q_text(s["iterations_to_equilibrium"], 3) + (f" ({never} never)" if never else ""),
                fmt_fraction(s["at_equilibrium"]),
                _end_text(s),
            ]
        )
    return cols, rows


def _by(results: dict, protocol: str, algo: str, n: int) -> dict | None:
    for s in results["curves"].values():
        if (s["protocol"], s["algorithm"], s["n_agents"]) == (protocol, algo, n):
            return s
    return None


def _measured(results: dict, protocol: str, n: int, gap_path: bool = False) -> str:
    out = []
    for algo in ("IPG", "INPG"):
        s = _by(results, protocol, algo, n)
        if s is None:
            continue
        name = "projected IPG" if s["config"]["algo"] == "ppg" else algo
        text = f"{name}: {_iters_text(s)}; {_eq_text(s)}"
        if gap_path and s["stopped"]:
            q = s["peak_nash_gap"]
            text += (
                f"; exact Nash gap from the uniform start: {_gap_path_text(s)}; each run's peak before "
                f"it ends {fmt(q['min'])}-{fmt(q['max'])} (median {fmt(q['median'])})"
            )
        out.append(text)
    return ". ".join(out)


def _lock_in_text(li: dict) -> str:
    return (
        f"agent 0's logit +{li['bias']:g} towards unit 0, the others uniform (N = {li['n_agents']}): "
        f"expected advantage difference {li['expected_difference']:+.2f} (exact expectation of their "
        f"estimator), true {fmt(li['true_difference'])}; for small biases {fmt(li['gain'], 3)} x the "
        f"bias, so INPG's expected step multiplies a bias by {li['inpg_growth']:.3f} per iteration"
    )


class Congestion:
    """``fox2022-congestion``: paper 001 Figs. 4-6."""

    NAME = "fox2022-congestion"
    TITLE = "Paper 001, congestion game (Figs. 4-6)"
    PAPER = "Fox et al. 2022, §4.2"
    DESCRIPTION = (
        "IPG vs INPG, N = 4 (and INPG for N = 8), 30 seeds per curve. **Authors' code** (commit 9bf9a97): "
        "their game (`Congestion-v0` with `graph='ring', n_layers=1, load='vertex'`: the state is every "
        "agent's unit, 2^N states, uniform mu), their visit-sum forced-action estimator (10 samples, "
        "T = 20), uniform start, eta = 1e-4, projected gradient as IPG, their stop rules (NPG: L1 change "
        "< 1e-5; projected PG: < 1e-15, one iteration behind) and their iteration caps: projected PG at "
        "most 2000 updates (`pg_routing.py` line 240, `full_experiment(3, 2000, ...)`), NPG at most 500 "
        "recorded policies, pi_0 to pi_499 (`npg_routing.py` line 224, `full_experiment(10, 500, ...)`). "
        "**Ours**: the DAG of the paper's Example 1 (`Congestion-v0` defaults), our on-policy estimator "
        "(batches of 20, T = 20), N(0, 1) initial logits, eta = 1e-4, softmax IPG, no stop rule. A run ends "
        "at an equilibrium when its exact Nash gap is at most 1e-3 x max|r| / (1 - gamma) = 0.1; fractions "
        "carry Wilson 95% intervals, stop iterations their min, quartiles and max.\n\n"
        "**Why the authors' runs stop after ~50 iterations.** The uniform start is an exact Nash equilibrium "
        "(Nash gap 0), and exact advantages vanish there. Their visit-sum estimator does not: it adds up "
        "gamma^t r_t into the value of every *visited* state, so a state's value grows with how often the "
        "runs visit it. An agent that, by sampling noise, prefers a unit makes the states where it sits "
        "there more visited, their values larger, and the forced Q-value of moving there larger: its "
        "estimated advantage favours the unit it already prefers. Exactly (the estimator's expectation, "
        "`ForcedActionEstimator.expected`): on their N = 4 game, one agent's logit bias of 0.2 towards a "
        "unit, the others uniform, gives an expected advantage difference of **+3.1** where the true one "
        "is 0; for small biases the expected difference is 15.6 x the bias, so INPG's step "
        "(eta / (1 - gamma) = 0.01) multiplies a bias by about 1.16 per iteration. Sampling noise of the "
        "first iterations grows to saturated logits in a few dozen iterations, the L1 change falls below "
        "1e-5, and the run stops, wherever the agents locked in: at a 2-2 split (an equilibrium) or at "
        "3-1 / 4-0 (not an equilibrium). The exact Nash gap rises from 0 on the way (the table gives its "
        "median at a few iterations and every run's peak)."
    )

    @staticmethod
    def run(ctx: Context) -> dict:
        seeds = ctx.seed_list(FULL_SEEDS, SHORT_SEEDS)
        runs = ctx.out / "runs"
        env, its = "mpg/Congestion-v0", AUTHORS_CAPS["congestion"]
        auth4 = _authors(env, {"n_agents": 4, **AUTHORS_CODE_GAME}, "forced_visit_sum", runs, its)
        auth8 = _authors(env, {"n_agents": 8, **AUTHORS_CODE_GAME}, "forced_visit_sum", runs, its)
        it4, it8 = (3000, 1500) if ctx.full else (1000, 500)
        ours4 = _ours(env, {"n_agents": 4}, runs, {"IPG": it4, "INPG": it4}, 10)
        ours8 = _ours(env, {"n_agents": 8}, runs, {"IPG": it8, "INPG": it8}, 10)
        ring, dag = "ring (authors' code)", "DAG (paper's text)"
        ms = {"IPG": [0, 500, 1000, 1500, 2000], 4: [0, 10, 20, 30, 40], 8: [0, 20, 40, 60, 80]}
        groups = [
            (
                "Authors' code, N = 4",
                [
                    _curve(AUTHORS, "IPG", 4, auth4["IPG"], seeds, ring, ms["IPG"]),
                    _curve(AUTHORS, "INPG", 4, auth4["INPG"], seeds, ring, ms[4]),
                ],
            ),
            ("Authors' code, N = 8", [_curve(AUTHORS, "INPG", 8, auth8["INPG"], seeds, ring, ms[8])]),
            ("Ours, N = 4", [_curve(OURS, a, 4, ours4[a], seeds, dag) for a in ("IPG", "INPG")]),
            ("Ours, N = 8", [_curve(OURS, "INPG", 8, ours8["INPG"], seeds, dag)]),
        ]
        li = {"n_agents": 4, "bias": LOCK_IN_BIAS, "horizon": 20, "layers": 2}
        title = "Paper 001, congestion game: the authors' code and ours"
        return _run(Congestion.NAME, title, ctx, groups, lock_in=li)

    rederive = staticmethod(rederive)

    @staticmethod
    def headline(results: dict) -> list[tuple[str, str, str]]:
        return [
            (
                "congestion N = 4, authors' code (their 2^N-state game and estimator, uniform start)",
                "IPG converges in ~2000 iterations, INPG in ~50",
                _measured(results, AUTHORS, 4, gap_path=True),
            ),
            (
                "congestion N = 8, authors' code",
                "INPG converges in < 100 iterations",
                _measured(results, AUTHORS, 8, gap_path=True),
            ),
            (
                "why the authors' runs stop: their visit-sum estimator at a biased policy",
                "(not in the paper)",
                _lock_in_text(results["lock_in"]),
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
        "IPG vs INPG on the distancing game (N = 8, `Distancing-v0` defaults: the authors' game), 30 seeds "
        "per curve. **Authors' code** (commit 9bf9a97): their per-state forced-action estimator with mean "
        "returns (10 samples, T = 20), uniform start, eta = 1e-4, projected gradient as IPG, their stop "
        "rules and iteration caps: projected PG at most 1000 updates (`congestionMPG_plots.py` line 237, "
        "`full_experiment(10, 1000, ...)`), NPG at most 500 recorded policies, pi_0 to pi_499 (`npg.py` "
        "line 251, `full_experiment(5, 500, ...)`). **Ours**: our on-policy estimator (batches of "
        "20, T = 20), N(0, 1) initial logits, eta = 1e-4, softmax IPG, no stop rule. A run ends at an "
        "equilibrium when its exact Nash gap is at most 1e-3 x max|r| / (1 - gamma) = 9.9; fractions carry "
        "Wilson 95% intervals. Endpoints are the agents at facilities (A, B, C, D) in the safe / "
        "distancing state: where they play when every agent plays one facility with probability >= 0.99 "
        "in each state, else `mixed ~` and the expected counts (rounded). The verdict is the final Nash gap "
        "against the tolerance, so one label can hold both: a mixed policy near (0,0,4,4)/(2,2,2,2) whose "
        "gap is still above 9.9 is not an equilibrium yet (the figure's fourth panel shows every run's gap "
        "by endpoint)."
    )

    @staticmethod
    def run(ctx: Context) -> dict:
        seeds = ctx.seed_list(FULL_SEEDS, SHORT_SEEDS)
        runs = ctx.out / "runs"
        env = "mpg/Distancing-v0"
        auth = _authors(env, {}, "forced", runs, AUTHORS_CAPS["distancing"])
        iters = 6000 if ctx.full else 1500
        ours = _ours(env, {}, runs, {"IPG": iters, "INPG": iters}, 25)
        game = "distancing"
        ms = [0, 50, 100, 200, 300]
        groups = [
            ("Authors' code", [_curve(AUTHORS, a, 8, auth[a], seeds, game, ms) for a in ("IPG", "INPG")]),
            ("Ours", [_curve(OURS, a, 8, ours[a], seeds, game) for a in ("IPG", "INPG")]),
        ]
        return _run(Distancing.NAME, "Paper 001, distancing game: the authors' code and ours", ctx, groups)

    rederive = staticmethod(rederive)

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
