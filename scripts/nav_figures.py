"""Regenerate ``docs/figures/nav_<environment>.png``: each navigation environment's first frame
(what the agent sees after ``reset(seed=0)``, at the paper's 103x103) beside its top view.

Usage (needs the ``nav`` and ``baselines`` extras)::

    python scripts/nav_figures.py [--out docs/figures]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from mpg_envs.nav import ENVIRONMENTS, make_env  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "figures")
    args = ap.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for name in ENVIRONMENTS:
        env = make_env(name, resolution=103)
        frame, _ = env.reset(seed=0)
        top = env.render_top_view()
        fig, (a, b) = plt.subplots(1, 2, figsize=(7, 3.4))
        a.imshow(frame)
        a.set_title(f"{name}: first frame (103x103)", fontsize=9)
        b.imshow(top)
        b.set_title(f"{name}: top view", fontsize=9)
        for ax in (a, b):
            ax.axis("off")
        fig.tight_layout()
        path = args.out / f"nav_{name}.png"
        fig.savefig(path, dpi=80)
        plt.close(fig)
        env.close()
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
