"""Command line: ``python -m baselines {train, dcpg, sb3, reproduce, list}``.

Examples::

    python -m baselines train --env mpg/Congestion-v0 --env-kwargs n_agents=4 --algo inpg --iters 500
    python -m baselines train --env mpg/Distancing-v0 --algo ipg --estimator sampled --eta 1e-4 --seeds 0 1 2
    python -m baselines train --env mpg/Coordination-v0 --env-kwargs n_agents=3 --algo nn_pg --optimizer adam
    python -m baselines train --resume runs/Congestion-v0__inpg__0__20261121-051500
    python -m baselines dcpg --layout no_conflict --gradient montecarlo --iters 1000
    torchrun --nproc-per-node 4 -m baselines dcpg --backend dist --layout no_conflict
    python -m baselines sb3 --env mpg/Coordination-v0 --env-kwargs n_agents=2 --steps 32768
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

from baselines.console import print_table
from baselines.train import RunResult, TrainConfig, train, validate_config

__all__ = ["main", "build_parser"]


def _kv(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    key, value = text.split("=", 1)
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value  # a bare string such as layout=no_conflict


def _env_kwargs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``--env-kwargs`` pairs as a dict, refusing a key given twice (one would silently win)."""
    keys = [k for k, _ in pairs]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise ValueError(f"--env-kwargs: {', '.join(twice)} given more than once")
    return dict(pairs)


def _bool(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _owners() -> tuple[dict[str, tuple[Any, str, list[str]]], dict[str, tuple[Any, str, list[str]]]]:
    """Algorithm and estimator options: flag name -> (default, help, owners)."""
    from baselines.algorithms import ALGORITHMS, algorithm_class
    from baselines.train import ESTIMATORS

    algo_opts: dict[str, tuple[Any, str, list[str]]] = {}
    for name in sorted(ALGORITHMS):
        for f in algorithm_class(name).config_fields():
            if not f.metadata.get("cli", True):
                continue  # a Python-API-only option
            default = f.default
            entry = algo_opts.setdefault(f.name, (default, f.metadata.get("help", ""), []))
            entry[2].append(name)
    est_opts: dict[str, tuple[Any, str, list[str]]] = {}
    for name, opts in ESTIMATORS.items():
        for k, (default, help_) in opts.items():
            entry = est_opts.setdefault(k, (default, help_, []))
            entry[2].append(name)
    return algo_opts, est_opts


_GENERIC_SKIP = ("env_kwargs", "algo_kwargs", "estimator_kwargs", "seed")


def _add_config_options(parser: argparse.ArgumentParser, config: type, skip: Sequence[str]) -> None:
    """One ``--option`` per field of a config dataclass (help from its metadata).

    Every option defaults to SUPPRESS so that ``main`` knows which ones were given.
    """
    for f in dataclasses.fields(config):
        if f.name in skip:
            continue
        default = f.default
        kind = _bool if isinstance(default, bool) else type(default)
        parser.add_argument(
            "--" + f.name.replace("_", "-"), type=kind, default=argparse.SUPPRESS,
            help=f"{f.metadata['help']} (default: {default!r})",
        )  # fmt: skip


#: The reproductions' names, in ``baselines.experiments.REPRODUCTIONS``' order (a test keeps them
#: equal): the parser lists them without importing every reproduction (a third of a second at the
#: start of every ``train``).
REPRODUCTION_NAMES = (
    "fox2022-distancing", "fox2022-congestion", "chen2022-coordination", "chen2022-coordination-nn",
    "zeng2021-gridworld", "zeng2021-graphs", "zeng2021-table1", "zeng2021-navigation", "sakulwongtana2019",
)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser; ``train`` options come from :class:`TrainConfig` and from every
    algorithm's and estimator's own options."""
    parser = argparse.ArgumentParser(
        prog="python -m baselines", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    tr = sub.add_parser(
        "train",
        help="train one configuration (one run per seed)",
        description="Train one configuration, one run per seed. An algorithm or estimator option is "
        "accepted only with an algorithm or estimator that has it.",
    )
    _add_config_options(tr, TrainConfig, _GENERIC_SKIP)
    tr.add_argument(
        "--env-kwargs", nargs="*", type=_kv, default=argparse.SUPPRESS, metavar="KEY=VALUE",
        help="env keyword arguments, e.g. n_agents=4 slip=0.1",
    )  # fmt: skip
    tr.add_argument(
        "--seeds", nargs="+", type=int, default=argparse.SUPPRESS, help="seeds; one run each (default: 0)"
    )
    algo_opts, est_opts = _owners()
    ga = tr.add_argument_group("algorithm options (each algorithm's own; see `python -m baselines list`)")
    for name, (default, help_, owners) in algo_opts.items():
        kind = _bool if isinstance(default, bool) else type(default)
        ga.add_argument(
            "--" + name.replace("_", "-"), type=kind, default=argparse.SUPPRESS,
            help=f"[{', '.join(owners)}] {help_} (default: {default!r})",
        )  # fmt: skip
    ge = tr.add_argument_group("estimator options")
    for name, (default, help_, owners) in est_opts.items():
        if name in algo_opts:
            continue
        ge.add_argument(
            "--" + name.replace("_", "-"), type=type(default), default=argparse.SUPPRESS,
            help=f"[{', '.join(owners)}] {help_} (default: {default!r})",
        )  # fmt: skip
    tr.add_argument(
        "--resume", default=None, metavar="RUN_DIR",
        help="continue a killed run from its checkpoint with its own config.json; only --iters may be "
        "given, to extend the run",
    )  # fmt: skip
    tr.add_argument("--no-progress", action="store_true", help="no progress bar")

    _add_dcpg_parser(sub)
    _add_sb3_parser(sub)
    rp = sub.add_parser("reproduce", help="reproduce a paper's experiment with embedded defaults")
    rp.add_argument("name", choices=[*REPRODUCTION_NAMES, "all"], help="which reproduction")
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
    rp.add_argument(
        "--workers", type=int, default=None,
        help="parallel worker processes (default: the CPUs); with --executor ray, the runs in flight "
        "(default: the cluster's CPUs) and the CPUs of a local Ray instance",
    )  # fmt: skip
    rp.add_argument(
        "--executor", choices=("process", "ray"), default="process",
        help="where the runs train: a pool of local processes (default), or Ray tasks on a local "
        'instance or the cluster of --address (needs pip install "mpg-envs[ray]"); same results',
    )  # fmt: skip
    rp.add_argument(
        "--address", default=None, metavar="ADDR",
        help="the Ray cluster for --executor ray: HOST:PORT of its head, ray://HOST:PORT or auto "
        "(default: RAY_ADDRESS, else a local Ray instance for this command); --out must be on a "
        "filesystem every node mounts at the same path",
    )  # fmt: skip
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


def _add_sb3_parser(sub) -> None:
    """The ``sb3`` options; each defaults to SUPPRESS so that ``--resume`` knows which were given."""
    sp = sub.add_parser(
        "sb3", help="Stable-Baselines3 (PPO, A2C) with parameter sharing and exact Nash gaps while it trains",
        description="Stable-Baselines3 with parameter sharing and exact metrics, in a resumable run folder. "
        "Every option is checked (env arguments, sizes, the exact model) before the folder is created.",
    )  # fmt: skip
    S = argparse.SUPPRESS
    sp.add_argument("--env", default=S, help="registered env id (default: mpg/Coordination-v0)")
    sp.add_argument("--env-kwargs", nargs="*", type=_kv, default=S, metavar="KEY=VALUE",
                    help="env arguments, e.g. n_agents=2 (observation defaults to vector)")  # fmt: skip
    sp.add_argument("--algo", choices=("ppo", "a2c"), default=S, help="default: ppo")
    sp.add_argument("--steps", type=int, default=S,
                    help="agent-steps in total (default 32,768; with --resume, the run's own or more, to "
                    "extend it)")  # fmt: skip
    sp.add_argument("--n-envs", type=int, default=S, help="env copies, n_envs x N SB3 slots (default: 8)")
    sp.add_argument("--seed", type=int, default=S, help="default: 0")
    sp.add_argument("--eval-every", type=int, default=S,
                    help="agent-steps between exact evaluations and saves (default: 4096)")  # fmt: skip
    sp.add_argument("--out", default=S, help="directory receiving the run folder (default: runs)")
    sp.add_argument(
        "--resume", default=None, metavar="RUN_DIR",
        help="continue a killed run from its model.zip with its own config.json; only --steps may be "
        "given, to extend the run",
    )  # fmt: skip
    sp.add_argument("--no-progress", action="store_true", help="no line per evaluation")


def _sb3_main(args: argparse.Namespace) -> int:
    from baselines.sb3 import run_sb3

    given = {k: v for k, v in vars(args).items() if k not in ("command", "resume", "no_progress")}
    try:
        if args.resume and set(given) - {"steps"}:
            flags = ", ".join("--" + k.replace("_", "-") for k in sorted(set(given) - {"steps"}))
            raise ValueError(
                f"--resume continues a run with its own config.json; options cannot be changed "
                f"(got {flags}); only --steps extends it"
            )
        if "env_kwargs" in given:
            given["env_kwargs"] = _env_kwargs(given["env_kwargs"])
        run_dir = run_sb3(**given, resume=args.resume, progress=not args.no_progress)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    _print_sb3_run(run_dir)
    return 0


def _add_dcpg_parser(sub) -> None:
    from baselines.consensus.dcpg import DCPGConfig

    dp = sub.add_parser(
        "dcpg",
        help="decentralized consensus policy gradient on a multi-task GridWorld (one run per seed)",
        description="Decentralized consensus policy gradient (paper 004, Algorithm 1): one agent per "
        "task, parameters exchanged with graph neighbours only. --backend dist runs one process per "
        "task under torchrun (torchrun --nproc-per-node N -m baselines dcpg --backend dist ...).",
    )
    _add_config_options(dp, DCPGConfig, ("seed", "layout"))
    ge = dp.add_argument_group(
        "multi-task env (--env): DCPG on any multi-task env, a network on its raw observations",
        "With --env the run trains on the env's tasks with Monte Carlo evaluation, and the shared "
        "options default to paper 004 §5.2's values (policy cnn, gradient reinforce, alpha 1e-4, gamma "
        "0.99, lam 0.03, iters 4000, eval-every 100, checkpoint-every 50); the grid-world options "
        "(--layout, --slip, --features, ...) are refused. Example: dcpg --env mpg/IndoorNav-v0 "
        "--env-kwargs resolution=64 max_cycles=200 --gradient ppo --iters 500",
    )
    ge.add_argument("--env", default=argparse.SUPPRESS,
                    help="multi-task env id (mpg/IndoorNav-v0, mpg/MultiTaskGridWorld-v0)")  # fmt: skip
    ge.add_argument("--env-kwargs", nargs="*", type=_kv, default=argparse.SUPPRESS, metavar="KEY=VALUE",
                    help="the env's keyword arguments, e.g. resolution=64 max_cycles=500")  # fmt: skip
    ge.add_argument("--eval-episodes", type=int, default=argparse.SUPPRESS,
                    help="episodes per policy and task of an evaluation, >= 2 (default: 10)")  # fmt: skip
    dp.add_argument(
        "--layout", nargs="+", default=argparse.SUPPRESS,
        help="a named layout (default: no_conflict) or one grid string per task",
    )  # fmt: skip
    dp.add_argument("--seeds", nargs="+", type=int, default=None, help="seeds; one run each (default: 0)")
    dp.add_argument(
        "--backend", choices=("single", "dist"), default="single",
        help="single: all agents in this process; dist: one torch.distributed rank per task (torchrun)",
    )  # fmt: skip
    dp.add_argument(
        "--resume", default=None, metavar="RUN_DIR",
        help="continue a killed run with its own config.json; only --iters may be given, to extend it",
    )  # fmt: skip
    dp.add_argument("--no-progress", action="store_true", help="no progress bar")


def _dcpg_main(args: argparse.Namespace) -> int:
    """``dcpg``: on a multi-task GridWorld layout (exact metrics), or with ``--env`` on any
    multi-task env (:mod:`baselines.consensus.envtasks`)."""
    import dataclasses as dc

    from baselines.consensus.dcpg import DCPGConfig, cli_layout, load_dcpg_config, prepare, run_dcpg
    from baselines.consensus.envtasks import EnvDCPGConfig, prepare_env, run_dcpg_env
    from baselines.runs import RunFolder

    given = {
        k: v
        for k, v in vars(args).items()
        if k not in ("command", "seeds", "backend", "resume", "no_progress")
    }
    if "layout" in given:
        given["layout"] = cli_layout(given["layout"])
    try:
        on_env = "env" in given or (args.resume and _run_kind(args.resume) == "dcpg-env")
        if not on_env and ("env_kwargs" in given or "eval_episodes" in given):
            flag = "--env-kwargs" if "env_kwargs" in given else "--eval-episodes"
            raise ValueError(f"{flag} is an option of DCPG on a multi-task env: pass --env too")
        if args.resume:
            extra = (set(given) - {"iters"}) | ({"seeds"} if args.seeds is not None else set())
            if extra:
                flags = ", ".join("--" + k.replace("_", "-") for k in sorted(extra))
                raise ValueError(
                    f"--resume continues a run with its own config.json; got {flags}; only --iters extends it"
                )
            configs = [None if on_env else load_dcpg_config(RunFolder(args.resume).read_config())]
        else:
            seeds = [0] if args.seeds is None else args.seeds
            if any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
                raise ValueError(f"seeds must be distinct integers >= 0, got {seeds}")
            if on_env:
                foreign = sorted(set(given) - {f.name for f in dc.fields(EnvDCPGConfig)})
                if foreign:
                    flags = ", ".join("--" + k.replace("_", "-") for k in foreign)
                    raise ValueError(
                        f"{flags}: not an option of DCPG on a multi-task env (--env); see dcpg --help"
                    )
                if "env_kwargs" in given:
                    given["env_kwargs"] = _env_kwargs(given["env_kwargs"])
                configs = [EnvDCPGConfig(**given, seed=s) for s in seeds]
            else:
                configs = [DCPGConfig(**given, seed=s) for s in seeds]
            for cfg in configs:  # every option, size and graph checked before the first folder
                prepare_env(cfg) if on_env else prepare(cfg, 1 if args.backend == "dist" else None)
        done = []
        try:
            for cfg in configs:
                kw = dict(
                    backend=args.backend, resume=args.resume, progress=not args.no_progress,
                    iters=given.get("iters") if args.resume else None,
                )  # fmt: skip
                res = (
                    run_dcpg_env(cfg, **kw)
                    if on_env
                    else run_dcpg(None if args.resume else cfg, plot=True, **kw)
                )
                if res.thetas is not None:  # the main process (rank 0 under torchrun)
                    done.append(res)
        finally:
            _print_dcpg_runs(done)
        if args.backend == "dist":
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def _run_kind(run_dir: str) -> str | None:
    """config.json's ``kind`` of a run folder (None when it cannot be read: the resume reports why)."""
    from baselines.runs import DamagedRunError, RunFolder

    try:
        data = RunFolder(run_dir).read_config()
    except (DamagedRunError, OSError, ValueError):
        return None
    return data.get("kind") if isinstance(data, dict) else None


def _print_dcpg_runs(done: list) -> None:
    if done:
        rows = [
            (r.run_dir.name, r.describe_end(), f"{r.metrics[-1]['objective']:.4f}",
             f"{r.metrics[-1]['consensus_error']:.2e}")
            for r in done
        ]  # fmt: skip
        print_table(
            f"dcpg: {len(done)} run(s) in {done[0].run_dir.parent}/",
            ["run folder", "end", "objective", "consensus error"], rows, align="<<>>", keep=[0],
        )  # fmt: skip


def _configs(args: argparse.Namespace) -> list[TrainConfig]:
    """One config per seed, every option routed to its owner and checked before any work."""
    from baselines.algorithms import algorithm_class
    from baselines.train import ESTIMATORS

    given = vars(args)
    generic = {f.name: given[f.name] for f in dataclasses.fields(TrainConfig)
               if f.name not in _GENERIC_SKIP and f.name in given}  # fmt: skip
    base = TrainConfig(**generic)
    algo_fields = [f.name for f in algorithm_class(base.algo).config_fields()]
    if base.estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {base.estimator!r}; choose from {list(ESTIMATORS)}")
    est_fields = list(ESTIMATORS[base.estimator])
    algo_opts, est_opts = _owners()
    algo_kwargs, est_kwargs = {}, {}
    for name in given:
        if name in generic or name in ("command", "resume", "no_progress", "env_kwargs", "seeds"):
            continue
        if name in algo_fields:
            algo_kwargs[name] = given[name]
        elif name in est_fields:
            est_kwargs[name] = given[name]
        else:
            owners = (algo_opts.get(name) or est_opts.get(name) or (None, "", []))[2]
            flag = "--" + name.replace("_", "-")
            raise ValueError(
                f"{flag} is not an option of {base.algo} or of the {base.estimator} estimator (it belongs "
                f"to {', '.join(owners)}); {base.algo}'s options: {algo_fields}, "
                f"{base.estimator}'s: {est_fields}"
            )
    from baselines.train import STOP_RULES

    # a rule without its threshold never fires (an unknown rule is named by validate_config)
    if "stop_rule" in given and "stop_l1" not in given and given["stop_rule"] in STOP_RULES:
        raise ValueError(
            f"--stop-rule {given['stop_rule']} needs --stop-l1 (an L1 threshold > 0); without it the run "
            "would never stop"
        )
    seeds = given.get("seeds", [0])
    if any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct integers >= 0, got {seeds}")
    env_kwargs = _env_kwargs(given.get("env_kwargs", []))
    configs = [
        dataclasses.replace(base, env_kwargs=env_kwargs, algo_kwargs=algo_kwargs, estimator_kwargs=est_kwargs,
                            seed=s)
        for s in seeds
    ]  # fmt: skip
    for cfg in configs:
        validate_config(cfg)
    return configs


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.command == "list":
        import mpg_envs
        from baselines.algorithms import ALGORITHMS, algorithm_class
        from baselines.console import wrap_text
        from baselines.experiments import REPRODUCTIONS
        from baselines.train import ESTIMATORS

        print(wrap_text("environments: " + ", ".join(sorted(mpg_envs.ENV_IDS)), indent=" " * 14))
        print("algorithms:")
        for name in sorted(ALGORITHMS):
            cls = algorithm_class(name)
            opts = ", ".join(f"--{f.name.replace('_', '-')} {f.default!r}" for f in cls.config_fields()
                             if f.metadata.get("cli", True))  # fmt: skip
            print(wrap_text(f"  {name:<10} {cls.help}", indent=" " * 13))
            print(wrap_text(f"             options: {opts}", indent=" " * 22))
        print("estimators:")
        for name, opts in ESTIMATORS.items():
            text = ", ".join(f"--{k} {v[0]!r}" for k, v in opts.items()) or "(no options)"
            print(wrap_text(f"  {name:<17} {text}", indent=" " * 20))
        print(wrap_text("reproductions: " + ", ".join(REPRODUCTIONS), indent=" " * 15))
        return 0
    if args.command == "dcpg":
        return _dcpg_main(args)
    if args.command == "sb3":
        return _sb3_main(args)
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
                executor=args.executor,
                address=args.address,
            )
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        print(f"wrote {args.out}/{args.name if args.name != 'all' else '*'}/")
        return 0
    given = {k for k in vars(args) if k not in ("command", "resume", "no_progress")}
    if args.resume:
        if given - {"iters"}:
            flags = ", ".join("--" + k.replace("_", "-") for k in sorted(given - {"iters"}))
            print(
                f"error: --resume continues a run with its own config.json; options cannot be changed "
                f"(got {flags}); only --iters extends it",
                file=sys.stderr,
            )
            return 2
        try:
            res = train(TrainConfig(), resume=args.resume, iters=getattr(args, "iters", None),
                        progress=not args.no_progress)  # fmt: skip
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        _print_train_runs([res])
        return 0
    try:
        configs = _configs(args)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    done: list[RunResult] = []
    for cfg in configs:
        try:
            done.append(train(cfg, progress=not args.no_progress))
        except ValueError as err:  # e.g. bad env kwargs or a model too large to build: nothing was written
            _print_train_runs(done)
            print(f"error: {err}", file=sys.stderr)
            return 2
    _print_train_runs(done)
    return 0


def _print_train_runs(results: Sequence[RunResult]) -> None:
    """The end of ``train``: one row per run, saying how it ended (all iterations, or where and
    why the stop rule stopped it) and its final exact metrics."""
    if not results:
        return
    rows = [
        (r.run_dir.name, r.describe_end(), f"{r.metrics[-1]['nash_gap']:.3e}", f"{r.metrics[-1]['poa']:.4f}")
        for r in results
    ]
    print_table(
        f"train: {len(results)} run(s) in {results[0].run_dir.parent}/",
        ["run folder", "end", "Nash gap", "POA"], rows, align="<<>>", keep=[0],
    )  # fmt: skip


def _print_sb3_run(run_dir) -> None:
    """The end of ``sb3``: the run's last exact evaluation."""
    import csv
    from pathlib import Path

    path = Path(run_dir) / "exact.csv"
    rows = list(csv.DictReader(open(path))) if path.exists() else []
    if not rows:
        print(f"wrote {run_dir}")
        return
    last = rows[-1]
    print_table(
        f"sb3: {Path(run_dir).parent}/",
        ["run folder", "agent-steps", "Nash gap", "welfare", "POA"],
        [(Path(run_dir).name, f"{int(float(last['timesteps'])):,}", f"{float(last['nash_gap']):.3e}",
          f"{float(last['welfare']):.4g}", f"{float(last['poa']):.4f}")],
        align="<>>>>", keep=[0],
    )  # fmt: skip
