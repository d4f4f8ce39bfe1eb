"""Vector envs: ``mpg/GridWorldTask-v0``'s native vector entry point against Gymnasium's
``SyncVectorEnv`` of the same task, in the same run (steps/s of random play, autoreset included).

Run: ``python benchmarks/bench_vector.py [--quick] [--update-reference]``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import add_output_args, report, save_results  # noqa: E402


def _rate(env, n: int, steps: int) -> float:
    env.reset(seed=0)
    acts = np.random.default_rng(0).integers(0, 4, (steps, n))
    t0 = time.perf_counter()
    for a in acts:
        env.step(a)
    return n * steps / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="fewer copies and steps (smoke test)")
    add_output_args(ap)
    args = ap.parse_args()
    import gymnasium

    import mpg_envs  # noqa: F401

    kw = dict(layout="no_conflict", task=0, slip=0.1)
    rows, ratios = [], {}
    for n in (64,) if args.quick else (64, 1024):
        native = gymnasium.make_vec(
            "mpg/GridWorldTask-v0", num_envs=n, vectorization_mode="vector_entry_point", **kw
        )
        sync = gymnasium.make_vec("mpg/GridWorldTask-v0", num_envs=n, vectorization_mode="sync", **kw)
        fast = _rate(native, n, 2000 if n > 100 else 500)
        slow = _rate(sync, n, 20 if n > 100 else 50)
        ratios[n] = fast / slow
        rows += [
            (f"GridWorldTask-v0, {n} copies: vector_entry_point", fast, "steps/s", None),
            (f"GridWorldTask-v0, {n} copies: SyncVectorEnv", slow, "steps/s", None),
            (f"  speed-up at {n} copies (target >= 100x at 1024)", fast / slow, "value", None),
        ]
    out = report(rows)
    notes = [
        "The native vector env steps every copy with one call of the task's dynamics (the same code as "
        "the single env and the batched sampler); SyncVectorEnv loops over env objects in Python."
    ]
    save_results("vector", args, results=out, ratios={str(k): v for k, v in ratios.items()}, notes=notes,
                 quick=args.quick)  # fmt: skip


if __name__ == "__main__":
    main()
