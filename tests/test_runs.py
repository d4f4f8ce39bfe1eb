"""Runs never lose or corrupt data: a run killed at any moment and resumed ends bit-identical to an
uninterrupted one (tabular and NN-Adam, whose optimiser state is checkpointed); finished runs are
refused or extended explicitly; damaged files give errors naming the file."""

from __future__ import annotations

import csv
import dataclasses
import json
import os

import numpy as np
import pytest

from baselines import runs
from baselines.runs import DamagedRunError
from baselines.train import TrainConfig, train

torch = pytest.importorskip("torch")
torch.set_num_threads(1)

ADAM = {"lr": 0.05, "optimizer": "adam", "hidden": "4", "log_barrier": 0.01}


def _cfg(tmp_path, **kw) -> TrainConfig:
    base = dict(
        env="mpg/Coordination-v0",
        env_kwargs={"n_agents": 2},
        algo="nn_pg",
        algo_kwargs=ADAM,
        iters=24,
        checkpoint_every=5,
        eval_every=4,
        out=str(tmp_path),
    )
    return TrainConfig(**{**base, **kw})


def _same(a, b) -> None:
    """Same final tables, snapshots, metrics (but wall time) and final files."""
    for x, y in zip(a.policies, b.policies):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(a.snapshots, b.snapshots)
    rows = [list(csv.DictReader(open(r.run_dir / "metrics.csv"))) for r in (a, b)]
    assert len(rows[0]) == len(rows[1])
    for x, y in zip(*rows):
        assert {k: v for k, v in x.items() if k != "wall_time"} == {
            k: v for k, v in y.items() if k != "wall_time"
        }
    fa, fb = (runs.RunFolder(r.run_dir).load_final() for r in (a, b))
    assert fa.keys() == fb.keys()
    for k in fa:
        np.testing.assert_array_equal(fa[k], fb[k])


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    return train(_cfg(tmp_path_factory.mktemp("ref")), progress=False, plot=False)


class Kill(Exception):
    """Stands for the process being killed."""


def _kill_on(monkeypatch, target: str, n: int) -> None:
    """Make the n-th call of runs.RunFolder.<target> die after writing its temporary file."""
    calls = {"k": 0}
    original = runs.atomic_write_bytes

    def dying(path, data):
        calls["k"] += 1
        if calls["k"] == n:
            tmp = path.with_name(path.name + runs.TMP_SUFFIX)
            tmp.write_bytes(data[: len(data) // 2])  # a half-written temporary file
            raise Kill
        original(path, data)

    method = getattr(runs.RunFolder, target)

    def patched(self, *args, **kw):
        monkeypatch.setattr(runs, "atomic_write_bytes", dying)
        try:
            return method(self, *args, **kw)
        finally:
            monkeypatch.setattr(runs, "atomic_write_bytes", original)

    monkeypatch.setattr(runs.RunFolder, target, patched)


@pytest.mark.parametrize("stop_after", [3, 7, 15, 23])  # before the first checkpoint, between, near the end
def test_nn_adam_resumes_bit_identical_after_a_kill(tmp_path, reference, stop_after):
    killed = train(_cfg(tmp_path), progress=False, plot=False, stop_after=stop_after)
    resumed = train(TrainConfig(), resume=killed.run_dir, progress=False, plot=False)
    _same(reference, resumed)


@pytest.mark.parametrize("target, n", [("save_checkpoint", 2), ("save_final", 1), ("append_snapshots", 2)])
def test_nn_adam_resumes_bit_identical_after_a_kill_during_a_write(
    tmp_path, monkeypatch, reference, target, n
):
    with monkeypatch.context() as m:
        _kill_on(m, target, n)
        with pytest.raises(Kill):
            train(_cfg(tmp_path), progress=False, plot=False)
    (run_dir,) = tmp_path.iterdir()
    assert list(run_dir.rglob(f"*{runs.TMP_SUFFIX}"))  # the kill left a half-written file behind
    resumed = train(TrainConfig(), resume=run_dir, progress=False, plot=False)
    _same(reference, resumed)
    assert not list(run_dir.rglob(f"*{runs.TMP_SUFFIX}"))


def test_tabular_sampled_run_resumes_bit_identical(tmp_path):
    cfg = TrainConfig(
        env="mpg/Distancing-v0",
        env_kwargs={"n_agents": 3},
        algo="inpg",
        algo_kwargs={"eta": 0.01},
        estimator="sampled",
        iters=30,
        checkpoint_every=7,
        eval_every=5,
        out=str(tmp_path / "a"),
    )
    full = train(cfg, progress=False, plot=False)
    cfg_b = dataclasses.replace(cfg, out=str(tmp_path / "b"))
    killed = train(cfg_b, progress=False, plot=False, stop_after=17)
    _same(full, train(TrainConfig(), resume=killed.run_dir, progress=False, plot=False))


def test_finished_run_is_refused_or_extended_explicitly(tmp_path, reference):
    short = train(_cfg(tmp_path, iters=10), progress=False, plot=False)
    with pytest.raises(ValueError, match="is finished .*pass iters to extend it"):
        train(TrainConfig(), resume=short.run_dir, progress=False)
    with pytest.raises(ValueError, match=r"iters must be an integer >= the run's iters \(10\)"):
        train(TrainConfig(), resume=short.run_dir, iters=5, progress=False)
    extended = train(TrainConfig(), resume=short.run_dir, iters=24, progress=False, plot=False)
    assert json.loads((short.run_dir / "config.json").read_text())["iters"] == 24
    _same(reference, extended)  # the same as a 24-iteration run from the start
    again = train(TrainConfig(), resume=short.run_dir, iters=24, progress=False, plot=False)  # idempotent
    _same(reference, again)


def test_damaged_files_are_named(tmp_path):
    res = train(
        _cfg(tmp_path, algo="ipg", algo_kwargs={"eta": 0.1}, iters=12),
        progress=False,
        plot=False,
        stop_after=11,
    )
    d = res.run_dir
    lines = (d / "metrics.csv").read_text().splitlines()
    (d / "metrics.csv").write_text("\n".join(lines[:2] + [lines[2][:5]] + lines[3:]) + "\n")
    with pytest.raises(DamagedRunError, match=r"metrics.csv: line 3 is damaged"):
        train(TrainConfig(), resume=d, progress=False)
    (d / "metrics.csv").write_text("\n".join(lines) + "\n")
    (d / "checkpoint.npz").write_bytes(b"not a zip file")
    with pytest.raises(
        DamagedRunError, match=r"checkpoint.npz: cannot read the checkpoint .* delete it to restart"
    ):
        train(TrainConfig(), resume=d, progress=False)
    (d / "config.json").write_text("{not json")
    with pytest.raises(DamagedRunError, match=r"config.json: not valid JSON"):
        train(TrainConfig(), resume=d, progress=False)


def test_a_row_cut_short_by_the_kill_is_dropped(tmp_path, reference):
    killed = train(_cfg(tmp_path), progress=False, plot=False, stop_after=12)
    with open(killed.run_dir / "metrics.csv", "a") as f:
        f.write("13,0.12")  # a kill in the middle of appending a row
    _same(reference, train(TrainConfig(), resume=killed.run_dir, progress=False, plot=False))


def test_snapshot_io_is_linear(tmp_path):
    """Each checkpoint writes only the snapshots since the previous one."""
    res = train(
        _cfg(tmp_path, algo="ipg", algo_kwargs={"eta": 0.1}, iters=40, eval_every=1),
        progress=False,
        plot=False,
    )
    chunks = sorted((res.run_dir / "snapshots").glob("*.npy"))
    sizes = [np.load(c).shape[0] for c in chunks]
    assert sum(sizes) == len(res.snapshots) - 1  # every snapshot once (the last one is in final.npz)
    assert max(sizes) <= 5


def test_run_folders_created_in_the_same_second_by_parallel_workers_are_distinct(tmp_path):
    """Folder names are claimed by mkdir itself (an exists() check first let two workers take one)."""
    from concurrent.futures import ThreadPoolExecutor

    from baselines.runs import RunFolder

    with ThreadPoolExecutor(8) as pool:
        paths = list(pool.map(lambda _: RunFolder.create(tmp_path / "out", "same").path, range(40)))
    assert len(set(paths)) == 40 and all(p.is_dir() for p in paths)


def test_one_writer_per_run_folder(tmp_path):
    """A second process is refused the folder's lock while the first holds it; a released (or
    killed) holder leaves the folder free."""
    import subprocess
    import sys

    from baselines.runs import RunFolder, RunInUseError

    folder = RunFolder.create(tmp_path, "x")
    child = f"from baselines.runs import RunFolder\nwith RunFolder({str(folder.path)!r}).lock(): pass"
    with folder.lock():
        r = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True)
        assert r.returncode != 0
        assert "RunInUseError" in r.stderr and f"pid {os.getpid()}" in r.stderr
    r = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    hold = child.replace("pass", "print('locked', flush=True); import time; time.sleep(600)")
    holder = subprocess.Popen([sys.executable, "-c", hold], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"  # waits however loaded the machine is
        with pytest.raises(RunInUseError):
            with folder.lock():
                pass
    finally:
        holder.kill()
        holder.wait()
    with folder.lock():  # kill -9 released it
        pass


def test_config_record_and_changed_entries():
    from baselines.runs import changed_entries, config_record

    rec = config_record({"iters": 5, "out": "runs", "hidden": (8, 8), "lam": 0.1}, ("iters", "out"))
    assert rec == {"hidden": [8, 8], "lam": 0.1}  # as JSON reads it back from a checkpoint
    assert changed_entries(rec, json.loads(json.dumps(rec))) == []
    assert changed_entries(rec, {**rec, "lam": 0.2}) == ["lam"]
    assert changed_entries({"a": None}, {}) == ["a"]  # a key only one record has counts
