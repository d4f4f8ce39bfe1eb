"""What a user sees on the console: tables that fit the terminal, runs that say how they ended,
short reprs of results, one run-folder scheme, and quick reproductions labelled as such."""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pettingzoo
import pytest

import mpg_envs  # noqa: F401
from baselines.console import FALLBACK_WIDTH, format_table, print_table, terminal_width
from baselines.experiments import REPRODUCTIONS, load_committed, print_headline
from baselines.experiments.stats import QUICK_NOTE
from baselines.runs import run_name
from baselines.train import TrainConfig, train
from mpg_envs import exact

ROOT = Path(__file__).resolve().parents[1]
COLS = ["experiment", "paper", "measured"]


def _headline_rows() -> list[list[str]]:
    """The reproductions' headline rows of the committed summaries (cells up to ~500 characters)."""
    rows = []
    for name, summary in load_committed(ROOT).items():
        rows += [list(r) for r in REPRODUCTIONS[name].headline(summary["results"])]
    return rows


def _columns_back(lines: list[str], n: int) -> list[list[str]]:
    """Each row's cells, read back from the table's lines by the rule's column spans."""
    rule = lines[1]
    spans = [m.span() for m in re.finditer(r"-+", rule)]
    assert len(spans) == n
    rows, current = [], None
    for ln in lines[2:]:
        if ln == "":
            current = None
            continue
        parts = [ln[a : (spans[k + 1][0] if k + 1 < n else None)].strip() for k, (a, _) in enumerate(spans)]
        if current is None:
            current = [[] for _ in range(n)]
            rows.append(current)
        for k, p in enumerate(parts):
            if p:
                current[k].append("".join(p.split()))
    return [["".join(c) for c in r] for r in rows]


@pytest.mark.parametrize("width", [40, 60, 80, 100, 140, 250])
def test_long_tables_fit_the_width_and_keep_every_character(width):
    rows = _headline_rows()
    assert max(len(c) for r in rows for c in r) > 300  # the tables that wrapped unreadably
    lines = format_table(COLS, rows, width=width)
    assert max(len(ln) for ln in lines) <= width
    # nothing lost: every cell reads back (whitespace aside) from its column
    back = _columns_back(lines, 3) if any(ln == "" for ln in lines) else None
    if back is not None:
        assert len(back) == len(rows)
        for got, want in zip(back, rows):
            assert got == ["".join(c.split()) for c in want]


def test_a_table_that_fits_is_left_alone():
    lines = format_table(["a", "value"], [("x", "1"), ("longer", "22")], width=80, align="<>")
    assert lines == ["a       value", "------  -----", "x           1", "longer     22"]


def test_bad_tables_are_refused():
    with pytest.raises(ValueError, match="every row needs 2 cells"):
        format_table(["a", "b"], [("x",)])
    with pytest.raises(ValueError, match="align must give"):
        format_table(["a", "b"], [("x", "y")], align="<^")


def test_terminal_width_columns_then_fallback(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "64")
    assert terminal_width() == 64
    print_table("a title " * 20, COLS, _headline_rows()[:3])
    assert max(len(ln) for ln in capsys.readouterr().out.splitlines()) <= 64
    monkeypatch.delenv("COLUMNS")

    def no_terminal(*_):
        raise OSError("not a terminal")

    monkeypatch.setattr(os, "get_terminal_size", no_terminal)
    assert (
        terminal_width() == shutil.get_terminal_size(fallback=(FALLBACK_WIDTH, 24)).columns == FALLBACK_WIDTH
    )


def test_benchmark_tables_fit(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "72")
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from common import report
    finally:
        sys.path.pop(0)
    name = "MAPPO coordination N=2, BenchMARL defaults (lr 5e-5), 32,768 agent-steps, seed 0: training speed"
    out = report([(name, 273.0, "agent-steps/s", None), ("evaluate N=8", 0.0076, "s", 0.05)])
    assert [r["name"] for r in out] == [name, "evaluate N=8"]
    printed = capsys.readouterr().out.splitlines()
    assert max(len(ln) for ln in printed) <= 72 and any("7.60 ms" in ln for ln in printed)


# ------------------------------------------------------------------------ how runs end
def test_train_says_where_and_why_it_stopped(tmp_path, monkeypatch, capsys):
    from baselines.cli import main

    monkeypatch.setenv("COLUMNS", "70")
    argv = ["train", "--env", "mpg/Coordination-v0", "--env-kwargs", "n_agents=2", "--iters", "300",
            "--stop-l1", "1e-3", "--seeds", "0", "1", "--out", str(tmp_path), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(len(ln) for ln in lines) <= 70
    table = lines[lines.index(next(ln for ln in lines if ln.startswith("run folder"))) :]
    cells = _columns_back(table, 4)
    assert len(cells) == 2
    # the reason is also in final.npz and in what load_run gives back
    from baselines.experiments.common import load_run

    for (name, end, gap, _), run in zip(cells, sorted(tmp_path.iterdir())):
        res = load_run(run)
        assert res.stopped and re.fullmatch(r"L1 change \S+ < 0\.001 \(rule l1\)", res.stop_reason)
        assert res.describe_end() == f"stopped at iteration {res.iterations}: {res.stop_reason}"
        assert (name, end) == (run.name, "".join(res.describe_end().split()))
        assert gap == f"{res.metrics[-1]['nash_gap']:.3e}"


def test_fox2022_pg_stop_is_said_and_survives_a_kill_during_the_final_write(tmp_path):
    """The authors' projected-PG rule decides one update before the run ends; a kill after the
    checkpoint of that last iteration (before final.npz) resumes to the same stop and reason."""
    env_kwargs = {"n_agents": 2, "graph": "ring", "n_layers": 1, "load": "vertex"}
    cfg = TrainConfig(env="mpg/Congestion-v0", env_kwargs=env_kwargs, algo="ppg", algo_kwargs={"eta": 0.01},
                      init="uniform", stop_l1=1e-3, stop_rule="fox2022-pg", iters=100,
                      estimator="forced_visit_sum", out=str(tmp_path))  # fmt: skip
    whole = train(cfg, progress=False, plot=False)
    assert whole.stopped and whole.iterations < 100
    rule = r"\(rule fox2022-pg: checked one update behind\)"
    assert re.fullmatch(r"L1 change \S+ < 0\.001 between iterations \d+ and \d+ " + rule, whole.stop_reason)
    (whole.run_dir / "final.npz").unlink()  # the kill: the last iteration's checkpoint is written
    resumed = train(cfg, resume=whole.run_dir, progress=False, plot=False)
    assert (resumed.stopped, resumed.iterations, resumed.stop_reason) == (
        True,
        whole.iterations,
        whole.stop_reason,
    )
    for a, b in zip(resumed.policies, whole.policies):
        np.testing.assert_array_equal(a, b)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_a_diverged_dcpg_run_says_so(tmp_path, monkeypatch, capsys):
    pytest.importorskip("torch")
    from baselines.cli import main

    monkeypatch.setenv("COLUMNS", "90")
    argv = ["dcpg", "--layout", "chain_reversed", "--policy", "mlp", "--hidden", "4", "--gradient", "exact",
            "--alpha", "1e200", "--iters", "6", "--eval-every", "1", "--out", str(tmp_path),
            "--no-progress"]  # fmt: skip
    assert main(argv) == 2  # refused, naming the iteration (the folder keeps the ones before)
    err = capsys.readouterr().err
    assert re.match(r"error: iteration 1: .*the updates diverged; lower alpha \(now 1e\+200\)\)", err)
    assert main(["dcpg", "--layout", "chain_reversed", "--gradient", "exact", "--iters", "5",
                 "--out", str(tmp_path), "--no-progress"]) == 0  # fmt: skip
    assert "ran 5 iterations" in capsys.readouterr().out


def test_sb3_says_when_there_is_nothing_to_train(tmp_path, monkeypatch, capsys):
    pytest.importorskip("stable_baselines3")
    from baselines.cli import main

    monkeypatch.setenv("COLUMNS", "200")
    argv = ["sb3", "--env-kwargs", "n_agents=2", "--steps", "128", "--n-envs", "2", "--eval-every", "128",
            "--out", str(tmp_path), "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    (run,) = tmp_path.iterdir()
    assert run.name in capsys.readouterr().out
    assert main(["sb3", "--resume", str(run)]) == 0
    assert "nothing to train: the run is at 128 of its 128 agent-steps" in capsys.readouterr().out


# ------------------------------------------------------------------------ reprs
def test_results_print_in_one_short_line(tmp_path):
    env = pettingzoo.make("parallel", "mpg/Congestion-v0", n_agents=8)
    model = env.unwrapped.model()  # S = 514, 8 agents
    pol = exact.random_policy(model, np.random.default_rng(0))
    gap = exact.nash_gap(model, pol)
    text = repr(gap)
    # the dataclass's own repr printed every field in full: 61,088 characters here
    assert "\n" not in text and len(text) < 400, text
    assert f"gap={gap.gap:.4g}" in text and f"worst={gap.worst:.4g}" in text and "(8, 514)" in text
    assert "best_responses=8 x BestResponse" in text
    for obj in (
        gap.best_responses[0],
        exact.social_optimum(model),
        exact.cycle_residual(model, rng=np.random.default_rng(0)),
    ):
        assert "\n" not in repr(obj) and len(repr(obj)) < 300, repr(obj)
    from baselines.estimators import ExactEstimator
    from baselines.sampler import BatchSampler

    est = ExactEstimator(model).estimate(pol)
    assert len(repr(est)) < 300 and "mu_values=[" in repr(est)
    rolls = BatchSampler(env.unwrapped.dynamics, 0).rollout(pol, 64, 20)
    assert len(repr(rolls)) < 400 and "n_episodes=64" in repr(rolls)
    res = train(TrainConfig(env="mpg/Coordination-v0", env_kwargs={"n_agents": 5}, iters=30,
                            out=str(tmp_path)), progress=False, plot=False)  # fmt: skip
    assert "\n" not in repr(res) and len(repr(res)) < 400 and "ran 30 iterations" in repr(res)


def test_dcpg_results_print_in_one_short_line(tmp_path):
    from baselines.consensus import DCPGConfig, Topology, run_dcpg
    from baselines.consensus.objective import shared_optimum

    res = run_dcpg(DCPGConfig(layout="start_top_left", gradient="exact", iters=3, out=str(tmp_path)))
    assert "\n" not in repr(res) and len(repr(res)) < 400 and "ran 3 iterations" in repr(res)
    assert (
        repr(Topology.make("ring", 6)) == "Topology(ring of 6, lazy Metropolis, sigma_2 = 0.750, gap 0.250)"
    )
    env = pettingzoo.make("parallel", "mpg/MultiTaskGridWorld-v0", layout="start_top_left")
    tasks = env.unwrapped.tasks
    assert len(repr(tasks[0])) < 300
    opt = shared_optimum(tasks[:2], 0.95, max_nodes=2000)
    assert "\n" not in repr(opt) and len(repr(opt)) < 300


# ------------------------------------------------------------------------ run folders
NAME = re.compile(r"^(?P<env>[A-Za-z0-9_.-]+)__(?P<algo>[A-Za-z0-9_-]+)__(?P<seed>\d+)__\d{8}-\d{6}(-\d+)?$")


def test_one_run_folder_scheme_for_every_kind_of_run(tmp_path):
    assert run_name("mpg/Congestion-v0", "inpg", 3) == "Congestion-v0__inpg__3"
    assert run_name("mpg/MultiTaskGridWorld-v0", "dcpg-exact", 0, "no_conflict") == (
        "MultiTaskGridWorld-v0-no_conflict__dcpg-exact__0"
    )
    assert run_name("mpg/MultiTaskGridWorld-v0", "sa-ppo", 1, ["S.G", "G.S"]).startswith(
        "MultiTaskGridWorld-v0-custom2__"
    )
    names = []
    res = train(TrainConfig(env="mpg/Coordination-v0", env_kwargs={"n_agents": 2}, iters=2, seed=4,
                            out=str(tmp_path)), progress=False, plot=False)  # fmt: skip
    names.append((res.run_dir.name, "Coordination-v0", "inpg", "4"))
    res = train(TrainConfig(env="mpg/MultiTaskGridWorld-v0", env_kwargs={"layout": "chain_slip"}, iters=2,
                            out=str(tmp_path)), progress=False, plot=False)  # fmt: skip
    names.append((res.run_dir.name, "MultiTaskGridWorld-v0-chain_slip", "inpg", "0"))
    from baselines.consensus import DCPGConfig, run_dcpg

    res = run_dcpg(DCPGConfig(layout="chain_reversed", gradient="exact", iters=2, seed=2, out=str(tmp_path)))
    names.append((res.run_dir.name, "MultiTaskGridWorld-v0-chain_reversed", "dcpg-exact", "2"))
    res = run_dcpg(DCPGConfig(layout="chain_reversed", communicate=False, iters=2, out=str(tmp_path)))
    names.append((res.run_dir.name, "MultiTaskGridWorld-v0-chain_reversed", "sa-montecarlo", "0"))
    pytest.importorskip("stable_baselines3")
    from baselines.sb3 import run_sb3

    run = run_sb3(env_kwargs={"n_agents": 2}, steps=64, n_envs=2, eval_every=64, out=tmp_path, progress=False)
    names.append((run.name, "Coordination-v0", "sb3-ppo", "0"))
    for name, env, algo, seed in names:
        m = NAME.match(name)
        assert m and (m["env"], m["algo"], m["seed"]) == (env, algo, seed), name
    readme = (ROOT / "README.md").read_text()
    assert "`runs/<env>__<algo>__<seed>__<time>/`" in readme


def test_folders_of_the_old_schemes_still_resume(tmp_path):
    """Only new names changed: --resume takes a path, and reproductions find runs by config."""
    from baselines.cli import main
    from baselines.runs import find_run
    from baselines.train import config_dict

    cfg = TrainConfig(env="mpg/Coordination-v0", env_kwargs={"n_agents": 2}, iters=4, out=str(tmp_path))
    res = train(cfg, progress=False, plot=False)
    old = res.run_dir.with_name("mpg-Coordination-v0__inpg__0__20250101-000000")  # the old train scheme
    res.run_dir.rename(old)
    assert find_run(str(tmp_path), config_dict(cfg)) == old
    assert main(["train", "--resume", str(old), "--iters", "8", "--no-progress"]) == 0
    assert int(np.load(old / "final.npz")["iteration"]) == 8


# ------------------------------------------------------------------------ quick reproductions
def test_a_quick_reproduction_is_labelled_as_one(capsys):
    rows = [("a claim", "yes", "6 of 10")]
    print_headline("Paper 001", Path("results/x"), rows, decides=False)
    quick = " ".join(capsys.readouterr().out.split())  # wrapped to the terminal
    assert QUICK_NOTE in quick and "measured (quick run: cannot decide; --full decides)" in quick
    print_headline("Paper 001", Path("results/x"), rows, decides=True)
    full = " ".join(capsys.readouterr().out.split())
    assert QUICK_NOTE not in full and "quick run" not in full and "measured" in full


def test_the_parser_lists_every_reproduction_without_importing_them():
    """``train`` starts without importing the reproductions, torch or matplotlib: the parser's
    list of reproduction names is kept equal to the registry here."""
    import subprocess
    import sys

    from baselines.cli import REPRODUCTION_NAMES

    assert REPRODUCTION_NAMES == tuple(REPRODUCTIONS)
    code = (
        "import sys; from baselines.cli import build_parser; build_parser().parse_args(['train']); "
        "heavy = [m for m in ('baselines.experiments', 'torch', 'matplotlib', 'stable_baselines3') "
        "if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
