"""Benchmark the spine: PettingZoo step throughput, model build, evaluate + Nash gap.

Prints a table and writes ``benchmarks/runs/spine.json``. Every ratio is taken within one run
(PettingZoo's own ``classic/rps-v2`` parallel env is measured beside ours as the reference).

Targets: >= 50,000 agent-steps/s through the PettingZoo API for N = 8; model build <= 1 s and
one evaluate + nash_gap <= 10 ms for the congestion game with N = 8 (514 states, 256 joint
actions).

The exact-analysis rows (nash_gap alone, evaluate + nash_gap, and nash_gap reusing evaluate's
values) cover the distancing game (N = 8: 2 states, 65,536 joint actions), the congestion game
(N = 8) and the coordination game (N = 5 and 8: 256 states x 256 joint actions, 16.7M
transitions). ``--baseline REV`` also times ``mpg_envs/exact.py`` as it was at git revision REV
(loaded beside the current one, on the current models), interleaving its repetitions with the
current code's, and prints old / new ratios: only ratios taken in the same run mean anything on
a machine whose speed varies.

Usage::

    python benchmarks/bench_spine.py [--quick] [--baseline REV] [--only-exact]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np
from common import add_output_args, best_of, best_of_interleaved, report, save_results, step_throughput

from mpg_envs import congestion_v0, coordination_v0, distancing_v0, exact

ROOT = Path(__file__).resolve().parent.parent


def exact_at(rev: str) -> types.ModuleType:
    """``mpg_envs/exact.py`` at git revision ``rev``, as a module beside the current one.

    It runs on the current package's models and validation helpers (``mpg_envs.model``,
    ``mpg_envs._validate``), which the exact module takes as inputs.
    """
    src = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:mpg_envs/exact.py"], capture_output=True, text=True
    )
    if src.returncode != 0:
        raise SystemExit(f"error: cannot read mpg_envs/exact.py at {rev!r}: {src.stderr.strip()}")
    name = f"_exact_at_{rev.replace('/', '_').replace('.', '_')}"
    module = types.ModuleType(name)
    module.__file__ = f"{rev}:mpg_envs/exact.py"
    sys.modules[name] = module  # dataclasses look their module up while the code runs
    exec(compile(src.stdout, module.__file__, "exec"), module.__dict__)
    return module


def _calls(mod: types.ModuleType, model, pol, reuse: bool) -> dict[str, Callable[[], object]]:
    """The timed calls of one exact module on one (model, policy)."""
    calls = {
        "nash_gap": lambda: mod.nash_gap(model, pol),
        "evaluate + nash_gap": lambda: (mod.evaluate(model, pol), mod.nash_gap(model, pol)),
    }
    if reuse:
        calls["evaluate + nash_gap(values=V)"] = lambda: mod.nash_gap(
            model, pol, values=mod.evaluate(model, pol)
        )
    return calls


def exact_rows(reps: int, baseline: types.ModuleType | None, rev: str | None) -> tuple[list, list]:
    """Rows for nash_gap, evaluate + nash_gap and nash_gap(values=) on the four exact-analysis cases.

    Returns:
        (table rows, comparisons [{case, old, new, ratio, ...}] when a baseline is given).
    """
    cases = [
        ("Distancing-v0 N=8", lambda: distancing_v0.parallel_env().model()),
        ("Congestion-v0 N=8", lambda: congestion_v0.parallel_env(n_agents=8).model()),
        ("Coordination-v0 N=5", lambda: coordination_v0.parallel_env(n_agents=5).model()),
        ("Coordination-v0 N=8", lambda: coordination_v0.parallel_env(n_agents=8).model()),
    ]
    rows, comparisons = [], []
    for label, make in cases:
        model = make()
        size = f"S={model.n_states}, A={model.n_joint_actions:,}"
        pol = exact.random_policy(model, np.random.default_rng(0))
        new = _calls(exact, model, pol, reuse=True)
        old = _calls(baseline, model, pol, reuse=False) if baseline is not None else {}
        repeats = max(2, reps // 2) if model.P.nnz > 10**7 else reps * 2
        times = best_of_interleaved([*new.values(), *old.values()], repeats)
        t_new, t_old = dict(zip(new, times)), dict(zip(old, times[len(new) :]))
        target = 0.01 if label == "Congestion-v0 N=8" else None
        for what, t in t_new.items():
            rows.append((f"{what}: {label} ({size})", t, "s", None if what == "nash_gap" else target))
        if baseline is None:
            continue
        for what, t in t_old.items():
            rows.append((f"{what}: {label} [exact.py at {rev}]", t, "s", None))
        V = exact.evaluate(model, pol)
        diff = np.abs(baseline.nash_gap(model, pol).per_state - exact.nash_gap(model, pol).per_state).max()
        for what, t in t_new.items():
            t0 = t_old["evaluate + nash_gap" if what.startswith("evaluate") else what]
            comparisons.append({"case": f"{what}: {label}", "old": t0, "new": t, "ratio": t0 / t})
        comparisons[-1]["max |gap old - gap new| / max(1, |V|)"] = float(diff / max(1.0, np.abs(V).max()))
    return rows, comparisons


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (smoke test)")
    ap.add_argument(
        "--baseline",
        metavar="REV",
        help="also time mpg_envs/exact.py at this git revision (e.g. main) and print old / new ratios",
    )
    ap.add_argument("--only-exact", action="store_true", help="only the exact-analysis rows")
    add_output_args(ap)
    args = ap.parse_args()
    if args.update_reference and (args.baseline or args.only_exact):
        raise SystemExit("error: --update-reference needs a full run without --baseline or --only-exact")
    n_steps = 5_000 if args.quick else 40_000
    reps = 2 if args.quick else 5
    baseline = exact_at(args.baseline) if args.baseline else None
    if args.only_exact:
        rows, comparisons = exact_rows(reps, baseline, args.baseline)
        out = report(rows)
        _print_comparisons(comparisons, args.baseline)
        save_results("spine_exact", args, results=out, baseline=args.baseline, comparisons=comparisons)
        return

    from pettingzoo.classic import rps_v2

    rows = []
    ref = step_throughput(rps_v2.parallel_env(max_cycles=10**9), n_steps)
    rows.append(("step: classic/rps-v2 (reference, N=2)", ref, "agent-steps/s", None))
    for n, kw in [(8, {}), (8, {"slip": 0.2}), (8, {"observation": "vector"}), (4, {})]:
        env = congestion_v0.parallel_env(n_agents=n, max_cycles=10**9, **kw)
        label = f"step: Congestion-v0 N={n}" + "".join(f" {k}={v}" for k, v in kw.items())
        rows.append((label, step_throughput(env, n_steps), "agent-steps/s", 50_000 if n == 8 else None))

    env = congestion_v0.parallel_env(n_agents=8)
    build = best_of(lambda: congestion_v0.parallel_env(n_agents=8).model(), reps)
    model = env.model()
    rows.append((f"model build N=8 (S={model.n_states}, A={model.n_joint_actions})", build, "s", 1.0))
    slip_build = best_of(lambda: congestion_v0.parallel_env(n_agents=6, slip=0.2).model(), max(1, reps // 2))
    rows.append(("model build N=6 slip=0.2 (64 noise outcomes)", slip_build, "s", None))
    rng = np.random.default_rng(0)
    pol = exact.random_policy(model, rng)
    uni = exact.uniform_policy(model)
    rows.append(("evaluate N=8", best_of(lambda: exact.evaluate(model, pol), reps * 4), "s", None))
    t_eg = best_of(lambda: (exact.evaluate(model, pol), exact.nash_gap(model, pol)), reps)
    rows.append(("evaluate + nash_gap N=8 (random policy)", t_eg, "s", 0.05))
    t_eu = best_of(lambda: (exact.evaluate(model, uni), exact.nash_gap(model, uni)), reps)
    rows.append(("evaluate + nash_gap N=8 (uniform policy)", t_eu, "s", 0.05))
    rows.append(
        ("policy_gradient N=8", best_of(lambda: exact.policy_gradient(model, pol), reps * 4), "s", None)
    )
    rows.append(
        ("cycle_residual N=8 (32 cycles)", best_of(lambda: exact.cycle_residual(model, rng), 1), "s", None)
    )

    more, comparisons = exact_rows(reps, baseline, args.baseline)
    rows += more

    out = report(rows)
    ratio = rows[1][1] / ref
    print(f"\nCongestion-v0 N=8 / rps-v2 agent-step throughput ratio (same run): {ratio:.2f}")
    _print_comparisons(comparisons, args.baseline)
    extra = {"baseline": args.baseline, "comparisons": comparisons} if baseline is not None else {}
    save_results("spine", args, results=out, ratio_congestion8_over_rps=ratio, quick=args.quick, **extra)


def _print_comparisons(comparisons: list[dict], rev: str | None) -> None:
    if not comparisons:
        return
    print(f"\nexact.py at {rev} (old) vs the working tree (new), same run:")
    print(f"{'case':<60} {'old':>11} {'new':>11} {'old/new':>8}")
    for c in comparisons:
        print(f"{c['case']:<60} {c['old'] * 1e3:>8.2f} ms {c['new'] * 1e3:>8.2f} ms {c['ratio']:>7.1f}x")


if __name__ == "__main__":
    main()
