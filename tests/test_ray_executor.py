"""Grids of runs on Ray (``reproduce NAME --executor ray [--address ADDR]``): the same run folders,
summaries and progress lines as the process pool, finished runs reused and interrupted ones resumed
(also after the driver is killed), and every bad executor, address or missing Ray refused before
any folder is made.

The tests that run Ray use a local instance (two CPUs, no dashboard) and skip where Ray is not
installed (``pip install "mpg-envs[ray]"``); the refusals run everywhere.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from baselines import runs
from baselines.cli import main
from baselines.consensus.dcpg import DCPGConfig
from baselines.experiments import executors, reproduce
from baselines.experiments.common import Context, Curve, map_runs, run_grid
from baselines.experiments.dcpg_grid import run_dcpg_grid
from baselines.train import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
HAS_RAY = __import__("importlib").util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(not HAS_RAY, reason='Ray is not installed (pip install "mpg-envs[ray]")')


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray instance for this module's tests (two CPUs, no dashboard)."""
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # this module's helpers run in tasks
    yield ray
    if started:
        ray.shutdown()


def _train_configs(out: Path | str) -> list[TrainConfig]:
    """A small grid: exact and sampled estimates, two algorithms, two seeds."""
    base = dict(env="mpg/Congestion-v0", env_kwargs={"n_agents": 3}, eval_every=5, checkpoint_every=10)
    return [
        TrainConfig(**base, algo=algo, estimator=est, iters=iters, seed=seed, out=str(out))
        for algo, est, iters in (("inpg", "exact", 40), ("ipg", "sampled", 25))
        for seed in (0, 1)
    ]


def _curves(out: Path | str) -> list[Curve]:
    cfgs = _train_configs(out)
    return [Curve("INPG", cfgs[:2]), Curve("IPG sampled", cfgs[2:])]


def _dcpg_configs(out: Path | str) -> list[DCPGConfig]:
    layout = ["S..#/.W.G/....", "S.G#/.W../....", "G..#/.W../...S"]
    kw = dict(layout=layout, gamma=0.9, slip=0.1, iters=12, eval_every=4, checkpoint_every=5, out=str(out))
    return [DCPGConfig(**kw, gradient="exact"), DCPGConfig(**kw, gradient="montecarlo", seed=3)]


def _folders(root: Path) -> dict[str, Path]:
    """The run folders under ``root``, keyed by their config (without ``out``)."""
    found = {}
    for d in sorted(root.iterdir()):
        cfg = json.loads((d / "config.json").read_text())
        cfg.pop("out")
        found[json.dumps(cfg, sort_keys=True)] = d
    return found


def _rows(path: Path) -> list[dict[str, str]]:
    return [{k: v for k, v in r.items() if k != "wall_time"} for r in csv.DictReader(open(path))]


def assert_same_folders(a: Path, b: Path) -> None:
    """Two trees of run folders hold the same runs, bit for bit (metrics but their wall times)."""
    fa, fb = _folders(a), _folders(b)
    assert set(fa) == set(fb)
    for key, da in fa.items():
        db = fb[key]
        names = sorted(p.relative_to(da).as_posix() for p in da.rglob("*") if p.name != ".lock")
        assert names == sorted(p.relative_to(db).as_posix() for p in db.rglob("*") if p.name != ".lock")
        for name in names:
            pa, pb = da / name, db / name
            if pa.suffix == ".csv":
                assert _rows(pa) == _rows(pb), name
            elif pa.suffix == ".npz":
                xa, xb = np.load(pa), np.load(pb)
                assert sorted(xa.files) == sorted(xb.files)
                for k in xa.files:
                    np.testing.assert_array_equal(xa[k], xb[k], err_msg=f"{name}: {k}")
            elif pa.suffix == ".npy":
                np.testing.assert_array_equal(np.load(pa), np.load(pb), err_msg=name)


def _progress(text: str) -> list[str]:
    """The "[k/n] ..." lines without k, timings and folder times, sorted (runs finish in any order)."""
    lines = [line for line in text.splitlines() if re.match(r"\[\d+/\d+\] ", line)]
    return sorted(re.sub(r"__\d{8}-\d{6}(-\d+)?", "", x.rsplit(" (", 1)[0].split("] ", 1)[1]) for x in lines)


def _strip_dirs(x):
    if isinstance(x, dict):
        return {k: _strip_dirs(v) for k, v in x.items() if k != "run_dir"}
    if isinstance(x, list):
        return [_strip_dirs(v) for v in x]
    return x


# ------------------------------------------------------------------------------------ refusals
def test_ray_not_installed_is_refused_with_the_install_command_before_any_folder(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    out = tmp_path / "res"
    with pytest.raises(ValueError, match=r'not installed.*pip install "mpg-envs\[ray\]"'):
        reproduce("fox2022-distancing", out=out, executor="ray")
    assert main(["reproduce", "fox2022-distancing", "--executor", "ray", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: executor 'ray' needs Ray") and 'pip install "mpg-envs[ray]"' in err
    assert not out.exists()


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"executor": "dask"}, "executor must be one of ['process', 'ray'], got 'dask'"),
        ({"executor": None}, "executor must be one of ['process', 'ray'], got None"),
        ({"executor": 1}, "executor must be one of ['process', 'ray'], got 1"),
        ({"address": "127.0.0.1:6379"}, "address '127.0.0.1:6379' needs executor 'ray'"),
        ({"executor": "ray", "address": ""}, "address must be a Ray address such as"),
        ({"executor": "ray", "address": " h:1"}, "got ' h:1'"),
        ({"executor": "ray", "address": "headnode"}, "a host and a port 1-65535), got 'headnode'"),
        ({"executor": "ray", "address": "h:0"}, "got 'h:0'"),
        ({"executor": "ray", "address": "h:65536"}, "got 'h:65536'"),
        ({"executor": "ray", "address": "h:63x"}, "got 'h:63x'"),
        ({"executor": "ray", "address": "ray://:10001"}, "got 'ray://:10001'"),
        ({"executor": "ray", "address": 6379}, "got 6379"),
        ({"executor": "ray", "address": float("nan")}, "got nan"),
    ],
)
def test_bad_executor_or_address_is_refused_before_any_folder(tmp_path, kw, message):
    out = tmp_path / "res"
    with pytest.raises(ValueError) as err:
        reproduce("fox2022-distancing", out=out, **kw)
    assert message in str(err.value)
    assert not out.exists()


def test_cli_refuses_an_address_without_the_ray_executor(tmp_path, capsys):
    out = tmp_path / "res"
    assert main(["reproduce", "fox2022-distancing", "--address", "127.0.0.1:6379", "--out", str(out)]) == 2
    assert "error: address '127.0.0.1:6379' needs executor 'ray' (--executor ray)" in capsys.readouterr().err
    assert not out.exists()
    with pytest.raises(SystemExit):
        main(["reproduce", "fox2022-distancing", "--executor", "dask"])  # argparse: not a choice


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Listener:
    """A loopback TCP server that accepts and then says ``reply`` (nothing: stays silent)."""

    def __init__(self, reply: bytes) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.reply = reply
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        try:
            while True:
                conn, _ = self.sock.accept()
                self.conns.append(conn)
                if self.reply:
                    conn.sendall(self.reply)
        except OSError:
            pass

    def close(self) -> None:
        for c in self.conns:
            c.close()
        self.sock.close()


@pytest.fixture
def no_ray_connection(monkeypatch):
    """Ray as in a fresh process (whatever this test process did with it); ray.init must not be
    reached by an address that the probe refuses."""
    ray = pytest.importorskip("ray")

    def init(*a, **k):
        raise AssertionError("ray.init reached")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)
    monkeypatch.setattr(executors, "CONNECT_TIMEOUT", 0.5)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    return ray


@pytest.mark.parametrize(
    "reply, message",
    [
        (None, "cannot reach a Ray cluster there (Connection refused)"),
        (b"", "accepts connections but does not answer as a Ray cluster (no gRPC greeting within 0.5 s)"),
        (b"HTTP/1.0 400 Bad Request\r\n\r\n", "does not answer as a Ray cluster"),
    ],
)
def test_an_unreachable_or_wrong_address_fails_fast_before_any_folder(
    tmp_path, no_ray_connection, reply, message
):
    server = None if reply is None else _Listener(reply)
    port = _closed_port() if server is None else server.port
    out = tmp_path / "res"
    t0 = time.monotonic()
    try:
        for address in (f"127.0.0.1:{port}", f"ray://127.0.0.1:{port}"):
            with pytest.raises(ValueError) as err:
                reproduce("fox2022-distancing", out=out, executor="ray", address=address)
            assert str(err.value).startswith(f"address {address!r}: ") and message in str(err.value)
    finally:
        if server is not None:
            server.close()
    assert time.monotonic() - t0 < 30  # Ray's own retries would take minutes
    assert not out.exists()


def test_ray_address_from_the_environment_is_probed_too(tmp_path, no_ray_connection, monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{_closed_port()}")
    with pytest.raises(ValueError, match=r"^RAY_ADDRESS '127\.0\.0\.1:\d+': cannot reach a Ray cluster"):
        reproduce("fox2022-distancing", out=tmp_path / "res", executor="ray")
    assert not (tmp_path / "res").exists()


def test_a_connection_ray_refuses_becomes_a_value_error(tmp_path, monkeypatch):
    """What Ray raises when it cannot connect (a ConnectionError, a RuntimeError after its retries,
    or SystemExit) ends as ``error: ...`` naming the address, with a hint for token authentication."""
    ray = pytest.importorskip("ray")
    server = _Listener(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")  # greets like a gRPC server
    calls = []

    def init(*a, **k):
        calls.append(k)
        raise RuntimeError("Failed to connect to GCS: Unauthenticated: InvalidAuthToken")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)
    monkeypatch.setattr(ray, "shutdown", lambda: None)
    try:
        with pytest.raises(ValueError, match="Ray could not connect .*set RAY_AUTH_MODE=token"):
            reproduce(
                "fox2022-distancing", out=tmp_path / "res", executor="ray", address=f"127.0.0.1:{server.port}"
            )
    finally:
        server.close()
    assert calls and calls[0]["address"] == f"127.0.0.1:{server.port}"
    assert not (tmp_path / "res").exists()


def test_a_run_folder_the_driver_cannot_see_is_refused(tmp_path):
    """On a cluster without a shared filesystem: the node cannot enter the driver's folder, or
    the driver cannot see what the node wrote -- both refused, saying why."""
    with pytest.raises(ValueError, match="cannot enter the driver's working folder .*same path"):
        executors._run_task(lambda cfg: ("x", False, 0.0), None, str(tmp_path / "missing"))
    with pytest.raises(ValueError, match=r"written on Ray node 'node-7', is not visible here"):
        executors.check_visible((str(tmp_path / "run"), False, 1.0), "node-7")


def _blas_threads(_cfg) -> int:
    import threadpoolctl

    return max(i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas")


def test_pool_workers_run_one_blas_thread_even_without_the_environment_variables(monkeypatch):
    """The pool's workers set their BLAS threads to one like Ray's tasks (so that both executors
    round alike): the environment variables alone came after numpy had loaded OpenBLAS."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)
    got = {}
    map_runs(_blas_threads, [0, 1], 2, lambda k, i, r: got.__setitem__(i, r))
    assert got == {0: 1, 1: 1}


# ------------------------------------------------------------------------------------ on Ray
@needs_ray
def test_ray_grid_equals_the_process_pool(tmp_path, local_ray, capsys):
    """The same train and DCPG runs on the pool and as Ray tasks: the same folders bit for bit,
    the same results and the same progress lines."""
    got = {}
    for ex in ("process", "ray"):
        ctx = Context(out=tmp_path / ex, workers=2, executor=ex)
        res = run_grid("grid", _curves(tmp_path / ex / "runs"), ctx)
        dres = run_dcpg_grid("dcpg", _dcpg_configs(tmp_path / ex / "dcpg"), ctx)
        got[ex] = (res, dres, _progress(capsys.readouterr().out))
    assert_same_folders(tmp_path / "process" / "runs", tmp_path / "ray" / "runs")
    assert_same_folders(tmp_path / "process" / "dcpg", tmp_path / "ray" / "dcpg")
    (pres, pd, plines), (rres, rd, rlines) = got["process"], got["ray"]
    assert plines == rlines and len(plines) == 6
    for label in pres:
        for a, b in zip(pres[label], rres[label]):
            np.testing.assert_equal(
                [dict(r, wall_time=0) for r in a.metrics], [dict(r, wall_time=0) for r in b.metrics]
            )
            for x, y in zip(a.policies, b.policies):
                np.testing.assert_array_equal(x, y)
    for a, b in zip(pd, rd):
        np.testing.assert_array_equal(a.thetas, b.thetas)


@pytest.fixture(scope="module")
def pool_summary(tmp_path_factory):
    """A tiny reproduction on the process pool: its summary and progress lines."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        res = reproduce(
            "chen2022-coordination", out=tmp_path_factory.mktemp("pool"), seeds=[0], max_iters=4, workers=2
        )
    return json.loads(json.dumps(res["chen2022-coordination"])), _progress(buf.getvalue())


@needs_ray
def test_ray_reproduction_summary_equals_the_process_pool(tmp_path, local_ray, pool_summary, capsys):
    name = "chen2022-coordination"
    ray_ = reproduce(name, out=tmp_path / "r", executor="ray", seeds=[0], max_iters=4)[name]
    out = capsys.readouterr().out
    pool, plines = pool_summary
    assert _strip_dirs(pool) == _strip_dirs(ray_)
    assert plines == _progress(out) and "[1/" in out
    assert json.loads((tmp_path / "r" / name / "summary.json").read_text()) == json.loads(json.dumps(ray_))
    assert local_ray.is_initialized()  # a connection made by the caller stays


@needs_ray
def test_ray_reuses_finished_runs_and_resumes_interrupted_ones(tmp_path, local_ray, capsys):
    from baselines.train import train

    cfgs = _train_configs(tmp_path / "runs")
    train(cfgs[0], progress=False, plot=False)  # finished
    killed = train(cfgs[1], progress=False, plot=False, stop_after=23)  # interrupted after a checkpoint
    assert not (killed.run_dir / "final.npz").exists()
    res = run_grid("grid", _curves(tmp_path / "runs"), Context(out=tmp_path, workers=2, executor="ray"))
    out = capsys.readouterr().out
    assert out.count("(reused)") == 1 and out.count("[") == 4
    assert res["INPG"][1].run_dir == killed.run_dir  # resumed in its own folder
    assert len(list((tmp_path / "runs").iterdir())) == 4
    run_grid("ref", _curves(tmp_path / "ref"), Context(out=tmp_path, workers=1))
    assert_same_folders(tmp_path / "runs", tmp_path / "ref")
    # all finished: a second pass trains nothing
    run_grid("grid", _curves(tmp_path / "runs"), Context(out=tmp_path, workers=2, executor="ray"))
    assert capsys.readouterr().out.count("(reused)") == 4


@needs_ray
def test_a_failing_run_raises_its_own_error_and_cancels_the_rest(tmp_path, local_ray):
    bad = dataclasses.replace(_train_configs(tmp_path)[0], env_kwargs={"n_agents": 3, "no_such_option": 1})
    cfgs = [*_train_configs(tmp_path)[2:], bad]
    with pytest.raises(ValueError, match="no_such_option") as err:
        run_grid("grid", [Curve("x", cfgs)], Context(out=tmp_path, workers=2, executor="ray"))
    assert type(err.value) is ValueError  # the run's own error, not Ray's wrapper


def _no_package(_cfg):
    raise ModuleNotFoundError("No module named 'baselines'")


@needs_ray
def test_a_node_without_the_package_is_refused_saying_what_to_install(local_ray):
    """A cluster node that cannot import the run's code (not installed there, or another version)."""
    message = r"cannot import the run's code \(No module named 'baselines'\): install this package"
    with pytest.raises(ValueError, match=message):
        map_runs(_no_package, [0], 1, lambda *a: None, "ray")


def _wait_unlocked(folders: list[Path], timeout: float = 60.0) -> None:
    """Wait until no killed writer holds a run folder's lock (its process is gone)."""
    deadline = time.monotonic() + timeout
    for d in folders:
        while True:
            try:
                with runs.RunFolder(d).lock():
                    break
            except runs.RunInUseError:
                assert time.monotonic() < deadline, f"{d} still locked"
                time.sleep(0.2)


_DRIVER = """
import json, sys
from pathlib import Path
from baselines.experiments.common import Context, Curve, run_grid
from baselines.train import TrainConfig
if __name__ == "__main__":
    cfgs = [TrainConfig(**c) for c in json.loads(sys.argv[1])]
    run_grid("kill", [Curve("x", cfgs)], Context(out=Path("."), workers=2, executor="ray"))
"""


@needs_ray
def test_a_killed_driver_leaves_resumable_run_folders(tmp_path, local_ray, capsys):
    """kill -9 of a driver whose runs train on its own local Ray instance: the runs in flight die
    with it, and the next call reuses the finished runs and resumes the interrupted ones to the
    same result as an uninterrupted grid."""
    base = dict(env="mpg/Congestion-v0", env_kwargs={"n_agents": 3}, algo="inpg", estimator="sampled")
    kw = dict(eval_every=10, checkpoint_every=10, out=str(tmp_path / "runs"))
    cfgs = [TrainConfig(**base, **kw, iters=3, seed=0)]
    cfgs += [TrainConfig(**base, **kw, iters=600, seed=s) for s in (1, 2, 3)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.Popen(
        [sys.executable, "-u", "-c", _DRIVER, json.dumps([dataclasses.asdict(c) for c in cfgs])],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        lines = []
        while not any(line.startswith("[1/4]") for line in lines):
            line = proc.stdout.readline()
            assert line and time.monotonic() < deadline, "".join(lines)
            lines.append(line)
        while not any((d / "checkpoint.npz").exists() and not (d / "final.npz").exists()
                      for d in (tmp_path / "runs").iterdir()):  # fmt: skip
            assert time.monotonic() < deadline and proc.poll() is None, "no run was interrupted"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
    folders = list((tmp_path / "runs").iterdir())
    assert any(not (d / "final.npz").exists() for d in folders)
    _wait_unlocked(folders)
    res = run_grid("again", [Curve("x", cfgs)], Context(out=tmp_path, workers=2, executor="ray"))
    out = capsys.readouterr().out
    assert "(reused)" in out and out.count("[") == 4
    assert {str(r.run_dir) for r in res["x"]} >= {str(d) for d in folders}  # resumed where they were
    ref = [dataclasses.replace(c, out=str(tmp_path / "ref")) for c in cfgs]
    run_grid("ref", [Curve("x", ref)], Context(out=tmp_path, workers=1))
    assert_same_folders(tmp_path / "runs", tmp_path / "ref")


_ADDRESS_DRIVER = """
import json, sys
from baselines.experiments import reproduce
if __name__ == "__main__":
    res = reproduce("chen2022-coordination", out="res", seeds=[0], max_iters=4, progress=False,
                    executor="ray", address=sys.argv[1])
    print(json.dumps(res["chen2022-coordination"]))
"""


@needs_ray
def test_address_connects_to_a_running_cluster_from_another_folder(tmp_path, local_ray, pool_summary):
    """A second driver, in another working folder, on this module's Ray instance by its address:
    the tasks (whose workers started in this process's folder) write under the driver's relative
    --out, and the summary equals the process pool's."""
    address = local_ray.get_runtime_context().gcs_address
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env.pop("RAY_ADDRESS", None)
    driver = tmp_path / "driver"
    driver.mkdir()
    got = subprocess.run(
        [sys.executable, "-c", _ADDRESS_DRIVER, address], cwd=driver, env=env, capture_output=True, text=True,
        timeout=300,
    )  # fmt: skip
    assert got.returncode == 0, got.stderr[-3000:]
    ray_ = json.loads(got.stdout.splitlines()[-1])
    assert (driver / "res" / "chen2022-coordination" / "summary.json").exists()
    assert not (ROOT / "res").exists() and not (Path.cwd() / "res").exists()
    assert _strip_dirs(ray_) == _strip_dirs(pool_summary[0])
