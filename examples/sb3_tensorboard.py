"""The exact Nash gap in TensorBoard: SB3's PPO with ``tensorboard_log`` and the exact-metrics callback.

``baselines.sb3.ExactMetricsCallback`` records the exact metrics of the shared policy (``exact/nash_gap``,
``exact/welfare``, ...) into SB3's logger, so with ``tensorboard_log=...`` they land in TensorBoard's
event files beside SB3's ``rollout/`` and ``train/`` scalars (``tensorboard --logdir <out>/tb``). This
example trains briefly on the coordination game (N = 2), reads the ``exact/`` scalars back from the
event files with TensorBoard's ``EventAccumulator`` and plots them.

Run: ``python examples/sb3_tensorboard.py [--steps 98304] [--out results/sb3_tensorboard]``
(about 15 s on 2 cores); the README's figure is made by
``python examples/sb3_tensorboard.py --figure docs/figures/sb3_tensorboard_nash_gap.png``.

Needs the ``baselines`` extra (SB3, tensorboard, matplotlib).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import pettingzoo
from stable_baselines3 import PPO

import mpg_envs  # noqa: F401  (registers the mpg/ environments)
from baselines.sb3 import ExactMetricsCallback, make_vec_env
from mpg_envs import exact

ENV = "mpg/Coordination-v0"
KW = {"n_agents": 2, "observation": "vector"}  # "vector": one network reads every agent


def read_scalars(logdir: Path, prefix: str = "exact/") -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag under ``prefix`` in the TensorBoard event files below ``logdir``: tag ->
    [(step, value)] in the order written."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out: dict[str, list[tuple[int, float]]] = {}
    for events in sorted(logdir.rglob("events.out.tfevents.*")):
        acc = EventAccumulator(str(events), size_guidance={"scalars": 0})  # 0: keep every point
        acc.Reload()
        for tag in acc.Tags()["scalars"]:
            if tag.startswith(prefix):
                out.setdefault(tag, []).extend((int(e.step), float(e.value)) for e in acc.Scalars(tag))
    return out


def train(steps: int, seed: int, out: Path, every: int = 2048) -> ExactMetricsCallback:
    """PPO on the coordination game, logging to ``out / "tb"``; returns the callback (its ``rows``)."""
    logdir = out / "tb"
    shutil.rmtree(logdir, ignore_errors=True)  # one run per folder: the plot reads every event file
    venv = make_vec_env(ENV, n_envs=8, seed=seed, **KW)
    cb = ExactMetricsCallback(pettingzoo.make("parallel", ENV, **KW), every=every)
    model = PPO("MlpPolicy", venv, n_steps=128, batch_size=256, seed=seed, tensorboard_log=str(logdir))
    model.learn(steps, callback=cb, tb_log_name="ppo")
    model.logger.close()  # the callback wrote each row to TensorBoard at its own step
    return cb


def plot(scalars: dict[str, list[tuple[int, float]]], optimum: float, figure: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gap = np.array(scalars["exact/nash_gap"])
    welfare = np.array(scalars["exact/welfare"])
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(7.5, 2.8))
    ax1.plot(gap[:, 0], gap[:, 1], marker="o", ms=3)
    ax1.set(xlabel="agent-steps", ylabel="exact Nash gap", yscale="log", title="exact/nash_gap")
    ax2.plot(welfare[:, 0], welfare[:, 1], marker="o", ms=3, label="PPO")
    ax2.axhline(optimum, color="k", ls="--", lw=1, label="social optimum")
    ax2.set(xlabel="agent-steps", ylabel="exact welfare", title="exact/welfare")
    ax2.legend(loc="lower right", fontsize=8)
    fig.suptitle("SB3 PPO, coordination N = 2: TensorBoard scalars", fontsize=10)
    fig.tight_layout()
    figure.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(figure, dpi=80)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=98_304, help="agent-steps of training")
    ap.add_argument("--every", type=int, default=4096, help="agent-steps between exact evaluations")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("results/sb3_tensorboard"))
    ap.add_argument("--figure", type=Path, default=None, help="the PNG (default <out>/sb3_tensorboard.png)")
    args = ap.parse_args(argv)
    if args.steps < 1 or args.every < 1:
        ap.error(f"--steps and --every must be positive, got {args.steps} and {args.every}")
    optimum = float(exact.social_optimum(pettingzoo.make("parallel", ENV, **KW).unwrapped.model()).welfare)
    train(args.steps, args.seed, args.out, args.every)
    scalars = read_scalars(args.out / "tb")
    for step, value in scalars["exact/nash_gap"]:
        print(f"{step:>7} agent-steps: exact/nash_gap {value:.4f} (TensorBoard)")
    figure = args.figure or args.out / "sb3_tensorboard.png"
    plot(scalars, optimum, figure)
    print(f"wrote {args.out / 'tb'} (tensorboard --logdir {args.out / 'tb'}) and {figure}")


if __name__ == "__main__":
    main()
