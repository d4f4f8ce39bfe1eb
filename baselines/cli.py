"""Command line: ``python -m baselines {train, reproduce, list}``.

Examples::

    python -m baselines train --env mpg/Congestion-v0 --env-kwargs n_agents=4 --algo inpg --iters 500
    python -m baselines train --env mpg/Distancing-v0 --algo ipg --estimator sampled --eta 1e-4 --seeds 0 1 2
    python -m baselines train --resume runs/mpg-Congestion-v0__inpg__0__20261121-051500
    python -m baselines reproduce chen2022-coordination          # short version, minutes
    python -m baselines reproduce all --full                     # the papers' sizes
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import sys
from collections.abc import Sequence
from typing import Any

from baselines.train import TrainConfig, train, validate_config

__all__ = ["main", "build_parser"]


def _kv(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    key, value = text.split("=", 1)
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value  # a bare string such as layout=no_conflict


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser; ``train`` options are generated from :class:`TrainConfig`."""
    from baselines.experiments import REPRODUCTIONS

    parser = argparse.ArgumentParser(
        prog="python -m baselines", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train", help="train one configuration (one run per seed)")
    # config options default to SUPPRESS so that main() knows which ones were given (--resume)
    for f in dataclasses.fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        if f.name == "env_kwargs":
            tr.add_argument(
                flag, nargs="*", type=_kv, default=argparse.SUPPRESS, metavar="KEY=VALUE",
                help=f.metadata["help"],
            )  # fmt: skip
        elif f.name == "seed":
            tr.add_argument(
                "--seeds", nargs="+", type=int, default=argparse.SUPPRESS,
                help="seeds; one run each (default: 0)",
            )  # fmt: skip
        else:
            tr.add_argument(
                flag, type=type(default), default=argparse.SUPPRESS,
                help=f"{f.metadata['help']} (default: {default})",
            )  # fmt: skip
    tr.add_argument(
        "--resume", default=None, metavar="RUN_DIR",
        help="continue a killed run from its checkpoint, with its own config.json (no other options)",
    )  # fmt: skip
    tr.add_argument("--no-progress", action="store_true", help="no progress bar")

    rp = sub.add_parser("reproduce", help="reproduce a paper's experiment with embedded defaults")
    rp.add_argument("name", choices=[*REPRODUCTIONS, "all"], help="which reproduction")
    rp.add_argument(
        "--full", action="store_true", help="the papers' sizes (long) instead of the short version"
    )
    rp.add_argument(
        "--seeds",
        nargs="+",
        type=int,
        default=None,
        help="seeds, one run per curve each, as in train "
        "(default: the paper's number of runs, seeds 0, 1, ...)",
    )
    rp.add_argument("--out", default="results", help="output folder (default: results)")
    rp.add_argument("--workers", type=int, default=None, help="parallel worker processes (default: the CPUs)")
    rp.add_argument(
        "--docs",
        nargs="?",
        const=".",
        default=None,
        metavar="REPO_ROOT",
        help="also regenerate docs/ and the README's reproduction tables in REPO_ROOT "
        "(default: .); needs --full",
    )
    rp.add_argument("--no-progress", action="store_true", help="print nothing while running")
    sub.add_parser("list", help="list environments, algorithms and reproductions")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.command == "list":
        import mpg_envs
        from baselines.algorithms import ALGORITHMS
        from baselines.experiments import REPRODUCTIONS

        print("environments:", ", ".join(sorted(mpg_envs.ENV_IDS)))
        print("algorithms:", ", ".join(sorted(ALGORITHMS)))
        print("reproductions:", ", ".join(REPRODUCTIONS))
        return 0
    if args.command == "reproduce":
        from baselines.experiments import reproduce

        try:
            reproduce(
                args.name,
                out=args.out,
                full=args.full,
                seeds=args.seeds,
                progress=not args.no_progress,
                workers=args.workers,
                docs=args.docs,
            )
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        print(f"wrote {args.out}/{args.name if args.name != 'all' else '*'}/")
        return 0
    given = {k for k in vars(args) if k not in ("command", "resume", "no_progress")}
    if args.resume:
        if given:
            flags = ", ".join("--" + k.replace("_", "-") for k in sorted(given))
            print(
                f"error: --resume continues a run with its own config.json; options cannot be changed "
                f"(got {flags}); start a new run instead",
                file=sys.stderr,
            )
            return 2
        try:
            res = train(TrainConfig(), resume=args.resume, progress=not args.no_progress)
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        print(f"{res.run_dir}: final Nash gap {res.metrics[-1]['nash_gap']:.3e}")
        return 0
    defaults = TrainConfig()
    values = {
        f.name: getattr(args, f.name, getattr(defaults, f.name))
        for f in dataclasses.fields(TrainConfig)
        if f.name not in ("seed", "env_kwargs")
    }
    seeds = getattr(args, "seeds", [0])
    configs = [TrainConfig(**values, env_kwargs=dict(getattr(args, "env_kwargs", [])), seed=s) for s in seeds]
    try:
        if any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must be distinct integers >= 0, got {seeds}")
        for cfg in configs:  # every config is checked before any work starts
            validate_config(cfg)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for cfg in configs:
        try:
            res = train(cfg, progress=not args.no_progress)
        except ValueError as err:  # e.g. bad env kwargs or a model too large to build: nothing was written
            print(f"error: {err}", file=sys.stderr)
            return 2
        print(f"{res.run_dir}: final Nash gap {res.metrics[-1]['nash_gap']:.3e}")
    return 0
