"""Multi-task GridWorld (paper 004 Fig. 2): one shared policy for several tasks, exact gradients.

Runs exact gradient ascent on the multi-task objective sum_i V_i(rho_i) (shared tabular softmax
policy; :func:`mpg_envs.exact.multitask_gradient`) for each named 10x10 layout and saves the
tasks side by side with the learned policy's most likely path (``<out>/<layout>.png``), plus the
per-task values in ``<out>/summary.json``. Centralised exact ascent is the upper reference that
decentralised consensus methods (DCPG) approximate.

Run: ``python examples/multitask_gridworld.py [--iters 300] [--out results/multitask_gridworld]``
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from mpg_envs import exact, multitask_gridworld_v0
from mpg_envs.gridworld import LAYOUTS


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--iters", type=int, default=300, help="gradient steps")
    ap.add_argument("--lr", type=float, default=5.0, help="step size on the logits")
    ap.add_argument("--out", type=Path, default=Path("results/multitask_gridworld"))
    args = ap.parse_args()
    if args.iters < 1 or args.lr <= 0:
        ap.error("--iters must be >= 1 and --lr > 0")
    args.out.mkdir(parents=True, exist_ok=True)
    summary = {}
    for layout in [n for n in LAYOUTS if not n.startswith("chain")]:
        env = multitask_gridworld_v0.parallel_env(layout=layout, render_mode="rgb_array")
        env.reset(seed=0)
        models = env.unwrapped.task_models()
        logits = np.zeros((models[0].n_states, models[0].action_sizes[0]))
        for _ in range(args.iters):
            logits += args.lr * exact.multitask_gradient(models, exact.softmax_policy([logits])[0])
        pol = exact.softmax_policy([logits])[0]
        values = [float(exact.evaluate(m, [pol])[0] @ m.mu) for m in models]
        best = [float(exact.best_response(m, [pol], 0).value @ m.mu) for m in models]
        summary[layout] = {"objective": sum(values), "task_values": values, "single_task_optima": best}
        print(
            f"{layout:<22} objective {sum(values):6.3f}  tasks {np.round(values, 3).tolist()}  "
            f"(each task alone: {np.round(best, 3).tolist()})"
        )
        img = env.unwrapped.render_rgb(pol)
        _save_png(args.out / f"{layout}.png", img)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"wrote {args.out}")


def _save_png(path: Path, img: np.ndarray) -> None:
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        np.save(path.with_suffix(".npy"), img)
        return
    plt.imsave(path, img)


if __name__ == "__main__":
    main()
