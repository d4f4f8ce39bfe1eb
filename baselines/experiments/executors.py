"""Where the runs of a reproduction train: a pool of local worker processes (the default) or Ray
tasks, on a local Ray instance or on a cluster (``reproduce NAME --executor ray [--address ADDR]``).

Both executors run the same function on the same configs, one run per task, each with one BLAS
thread and one torch thread; a run is seeded by its own config, so the run folders, the metrics
and ``summary.json`` are the same whichever executor trained them (``tests/test_ray_executor.py``
compares them). Finished runs are reused and interrupted ones resumed as with the pool: the task
looks its config up under ``cfg.out`` like the pool's workers do.

Ray core only (``pip install "mpg-envs[ray]"``, i.e. ``ray>=2.40``): RLlib, which pins gymnasium,
is not needed. On a cluster:

* every node needs this package (the same version) and its dependencies installed;
* ``--out`` must be on a filesystem that every node mounts at the same path as the driver (run
  folders are written by the node that trains the run and read by the driver): a task whose node
  does not see the driver's working folder, or whose run folder the driver then cannot see, is
  refused with an error saying so;
* ``--workers`` caps the runs in flight (default: the cluster's CPUs when it connects); each run
  asks Ray for one CPU.

Without ``--address`` a local Ray instance is started for the reproduction (``--workers`` CPUs,
default all of them) and shut down at the end, unless ``RAY_ADDRESS`` names a cluster (as with
``ray.init``); a process that called ``ray.init`` itself keeps its connection and Ray instance.
An address is probed before Ray connects to it (a TCP connection and an HTTP/2 greeting, each
within :data:`CONNECT_TIMEOUT` seconds), so an unreachable or wrong one ends with an error
instead of Ray's retries of several minutes.

Killing the driver kills its tasks with it (Ray ends a dead driver's tasks); their run folders
resume on the next call like any killed run. A run that fails raises its own exception in the
driver, as with the pool, and the runs still in flight are cancelled (they resume next time).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "EXECUTORS",
    "RAY_INSTALL",
    "CONNECT_TIMEOUT",
    "check_executor",
    "session",
    "map_ray",
    "one_thread_per_worker",
]

#: The executors ``reproduce`` takes.
EXECUTORS = ("process", "ray")
#: How to install what ``--executor ray`` needs (named by its error).
RAY_INSTALL = 'pip install "mpg-envs[ray]"  (or: pip install "ray>=2.40")'
#: Seconds to wait for a Ray address to accept a connection and to greet (each).
CONNECT_TIMEOUT = 10.0

#: A run's outcome as the grid functions return it: (run folder, reused, seconds).
Outcome = tuple[str, bool, float]


def one_thread_per_worker() -> None:
    """One BLAS and one OpenMP thread in this worker process (one run per CPU).

    The environment variables alone come too late in a spawned pool worker: numpy (and its
    OpenBLAS, which reads them at load time) is imported before the initializer runs, so the
    thread pools are limited through threadpoolctl too. A Ray worker gets the same, so that both
    executors run the same arithmetic (OpenBLAS rounds differently on 1 and 2 threads).
    """
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    import threadpoolctl

    threadpoolctl.threadpool_limits(limits=1, user_api="blas")


# ------------------------------------------------------------------------------------ checks
def _import_ray():
    """The ray module, or ValueError naming the install command."""
    try:
        import ray
    except ImportError as err:
        raise ValueError(
            f"executor 'ray' needs Ray, which is not installed here ({err}); install it with {RAY_INSTALL}"
        ) from None
    return ray


def check_executor(executor: Any, address: Any) -> None:
    """Validate ``executor`` and ``address`` (and that Ray is installed when it is asked for).

    Raises:
        ValueError: An unknown executor, an address that is not a non-empty string or that is
            given without ``executor="ray"``, or Ray not installed (the message names the
            install command). Nothing is started or created.
    """
    if not isinstance(executor, str) or executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {list(EXECUTORS)}, got {executor!r}")
    if address is not None:
        if executor != "ray":
            raise ValueError(
                f"address {address!r} needs executor 'ray' (--executor ray), got executor {executor!r}"
            )
        _split_address(address, "address")  # the form only; reachability when connecting
    if executor == "ray":
        _import_ray()


def _split_address(address: Any, source: str) -> tuple[str, int] | None:
    """(host, port) of a Ray address, None for ``"auto"``/``"local"``; ValueError for a bad form."""
    if not isinstance(address, str) or not address.strip() or address != address.strip():
        raise ValueError(
            f"{source} must be a Ray address such as 'HOST:6379', 'ray://HOST:10001' or 'auto', "
            f"got {address!r}"
        )
    if address in ("auto", "local"):
        return None
    rest = address[len("ray://") :] if address.startswith("ray://") else address
    host, sep, port = rest.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host  # [IPv6]:port
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(
            f"{source} must be a Ray address such as 'HOST:6379', 'ray://HOST:10001' or 'auto' "
            f"(a host and a port 1-65535), got {address!r}"
        )
    return host, int(port)


def _probe(address: str, source: str, timeout: float) -> None:
    """Refuse an address that does not answer like a Ray head within ``timeout`` seconds (twice).

    A Ray head's GCS port and a Ray client server are gRPC servers: they accept a TCP
    connection and answer HTTP/2's connection preface with a SETTINGS frame. Anything else (a
    refused or filtered port, another service) is refused here, in seconds, instead of by Ray's
    own retries, which take minutes (and may end the process).
    """
    hp = _split_address(address, source)
    if hp is None:
        return
    host, port = hp
    where = f"{source} {address!r}"
    try:
        conn = socket.create_connection((host, port), timeout=timeout)
    except OSError as err:
        why = f"no answer within {timeout:g} s" if isinstance(err, TimeoutError) else err.strerror or str(err)
        raise ValueError(
            f"{where}: cannot reach a Ray cluster there ({why}); start one with `ray start --head` "
            "(it prints its address) or check the host and port"
        ) from None
    if os.environ.get("RAY_USE_TLS", "0").lower() in ("1", "true"):
        conn.close()
        return  # a TLS head greets only after the handshake: Ray checks the rest
    try:
        with conn:
            conn.settimeout(timeout)
            conn.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
            reply = b""
            deadline = time.monotonic() + timeout
            while len(reply) < 9 and time.monotonic() < deadline:
                chunk = conn.recv(9 - len(reply))
                if not chunk:
                    break
                reply += chunk
    except OSError:
        reply = b""
    if len(reply) < 9 or reply[3] != 0x04:  # frame type 4: SETTINGS
        raise ValueError(
            f"{where}: the port accepts connections but does not answer as a Ray cluster (no "
            f"gRPC greeting within {timeout:g} s); give the head's GCS address (port 6379 unless "
            "`ray start --head --port` chose another) or a Ray client address ray://HOST:10001"
        )


def _target(address: str | None) -> tuple[str | None, str]:
    """The address ``ray.init`` will connect to (None: it starts a local instance) and where it
    comes from (for messages)."""
    if address is None:
        env = os.environ.get("RAY_ADDRESS")
        if env and env != "local":
            return env, "RAY_ADDRESS"
        return None, "address"
    if address == "local":
        return None, "address"
    if address == "auto":  # Ray looks in RAY_ADDRESS and for the cluster `ray start` last started
        try:
            from ray._private.services import canonicalize_bootstrap_address

            found = canonicalize_bootstrap_address("auto")
        except Exception:  # Ray's lookup changed or found nothing usable: Ray will say so
            return "auto", "address"
        if found is None:
            raise ValueError(
                "address 'auto': no running Ray cluster found on this machine (none started by "
                "`ray start --head`, no RAY_ADDRESS); start one or give its address"
            )
        return str(found), "address 'auto' ->"
    return address, "address"


# ------------------------------------------------------------------------------------ connection
@contextlib.contextmanager
def session(executor: str, address: str | None, workers: int | None, progress: bool = True) -> Iterator[int]:
    """Connect the executor for a reproduction; yields how many runs may be in flight at once.

    The process pool needs no connection (default: the CPUs of this machine). Ray: reuse the
    connection of a process that called ``ray.init`` itself, else probe and connect to
    ``address`` (or ``RAY_ADDRESS``), else start a local instance with ``workers`` CPUs; a
    connection made here is shut down on exit (a local instance with it).

    Args:
        executor: ``"process"`` or ``"ray"`` (validated by :func:`check_executor` first).
        address: A Ray address (``HOST:PORT``, ``ray://HOST:PORT``, ``auto``) or None.
        workers: Runs in flight (default: the CPUs of this machine, or of the Ray cluster).
        progress: Ray's warnings shown (else only its errors).

    Raises:
        ValueError: An unreachable address, one that is not a Ray cluster, or a connection
            that Ray refuses (its reason in the message).
    """
    if executor == "process":
        yield workers if workers is not None else os.cpu_count() or 1
        return
    ray = _import_ray()
    if ray.is_initialized():
        if address is not None:
            raise ValueError(
                f"address {address!r}: Ray is already initialised in this process (ray.init); "
                "give no address to use that connection, or call ray.shutdown() first"
            )
        yield _in_flight(ray, workers)
        return
    target, source = _target(address)
    if target is not None and target != "auto":
        _probe(target, source, CONNECT_TIMEOUT)
    level = logging.WARNING if progress else logging.ERROR
    notice = logging.getLogger("ray._private.authentication.authentication_token_setup")
    quiet = _DropTokenNotice()
    notice.addFilter(quiet)  # not a warning: the instance started here uses Ray's default security
    try:
        if target is None:
            ray.init(address="local", num_cpus=workers, include_dashboard=False, logging_level=level)
        else:
            ray.init(address=target, logging_level=level)
    except (ConnectionError, RuntimeError, SystemExit) as err:  # Ray ends a failed connection with SystemExit
        with contextlib.suppress(Exception):
            ray.shutdown()
        text = " ".join(str(err).split())[:600]
        hint = (
            "; the cluster uses token authentication: set RAY_AUTH_MODE=token and give its token "
            "(~/.ray/auth_token or RAY_AUTH_TOKEN)"
            if "auth" in text.lower()
            else ""
        )
        raise ValueError(
            f"{source} {target!r}: Ray could not connect ({type(err).__name__}: {text}){hint}"
        ) from None
    finally:
        notice.removeFilter(quiet)
    try:
        yield _in_flight(ray, workers)
    finally:
        ray.shutdown()


class _DropTokenNotice(logging.Filter):
    """Drops Ray's notice that a new local instance uses token authentication (its default)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Token authentication is enabled" not in record.getMessage()


def _in_flight(ray, workers: int | None) -> int:
    """Runs in flight: ``workers``, else the cluster's CPUs (at least 1)."""
    if workers is not None:
        return workers
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


# ------------------------------------------------------------------------------------ running
def _run_task(fn: Callable[[Any], Outcome], cfg: Any, cwd: str) -> tuple[Outcome, str]:
    """One run in a Ray worker, in the driver's working folder (run folders are relative to it)."""
    host = socket.gethostname()
    if not _WORKER_READY:  # once per worker process (threadpoolctl scans the loaded libraries)
        one_thread_per_worker()
        _WORKER_READY.append(True)
    before = os.getcwd()
    try:
        os.chdir(cwd)
    except OSError as err:
        raise ValueError(
            f"Ray node {host!r} cannot enter the driver's working folder {cwd!r} ({err.strerror or err}): "
            "the output folder must be on a filesystem every node of the cluster mounts at the same path"
        ) from None
    try:
        return fn(cfg), host
    finally:
        os.chdir(before)


_REMOTE: dict[str, Any] = {}
_WORKER_READY: list[bool] = []


def _remote(ray):
    """The Ray task that runs one config (one CPU; a crashed worker's run is retried, resuming)."""
    if "task" not in _REMOTE:
        _REMOTE["task"] = ray.remote(num_cpus=1, max_retries=2)(_run_task)
    return _REMOTE["task"]


def check_visible(outcome: Outcome, host: str) -> None:
    """Refuse a run folder that a Ray node wrote where the driver cannot see it."""
    run_dir = Path(outcome[0])
    if not (run_dir / "config.json").is_file():
        raise ValueError(
            f"run folder {str(run_dir)!r}, written on Ray node {host!r}, is not visible here: the output "
            "folder must be on a filesystem every node of the cluster mounts at the same path as the driver"
        )


def map_ray(
    fn: Callable[[Any], Outcome],
    configs: Sequence[Any],
    workers: int,
    done: Callable[[int, int, Outcome], None],
) -> None:
    """``fn(cfg)`` for every config as Ray tasks, at most ``workers`` in flight, calling
    ``done(k, i, outcome)`` in this process as the k-th finishes (i: its index).

    Starts a local Ray instance (``workers`` CPUs) if this process has no connection, and shuts
    it down at the end. A task's exception is raised here as it was raised there (the runs in
    flight are cancelled first; they resume next time).
    """
    ray = _import_ray()
    if not ray.is_initialized():
        with session("ray", None, workers, progress=True) as n:
            map_ray(fn, configs, n, done)
        return
    task = _remote(ray)
    cwd = os.getcwd()
    todo = list(enumerate(configs))[::-1]
    pending: dict[Any, int] = {}
    k = 0
    try:
        while todo or pending:
            while todo and len(pending) < max(1, workers):
                i, cfg = todo.pop()
                pending[task.remote(fn, cfg, cwd)] = i
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            i = pending.pop(ref)
            try:
                outcome, host = ray.get(ref)
            except ray.exceptions.RayTaskError as err:
                cause = getattr(err, "cause", None)
                if isinstance(cause, ImportError) or "failed to import on the worker" in str(cause):
                    lines = str(cause).strip().splitlines() or [repr(cause)]
                    why = lines[-1][:300]  # Ray's message ends with the worker's ImportError
                    raise ValueError(
                        f"a Ray worker cannot import the run's code ({why}): install this package, "
                        "the same version as here, with its dependencies on every node of the cluster"
                    ) from None
                if isinstance(cause, Exception):
                    raise cause from None
                raise
            check_visible(outcome, host)
            k += 1
            done(k, i, outcome)
    finally:
        for ref in pending:  # an error or Ctrl-C here: stop the runs in flight (they resume)
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)
