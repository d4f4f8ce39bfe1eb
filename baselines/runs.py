"""Run folders: everything a training run writes, written so that no kill loses or corrupts data.

Every run -- ``train``, ``dcpg``, ``sb3`` and the reproductions' runs -- lives in
``<out>/<env>__<algo>__<seed>__<time>/`` (:func:`run_name`, :meth:`RunFolder.create`): ``<env>`` is the
registered id without its ``mpg/`` namespace (``Congestion-v0``), followed by the layout for the
multi-task GridWorld (``MultiTaskGridWorld-v0-no_conflict``); ``<algo>`` the algorithm (``inpg``,
``nn_pg``; ``dcpg-exact``, ``sa-montecarlo``, ``dcpg-mlp-ppo`` for DCPG and its single-agent
baselines; ``sb3-ppo``); ``<seed>`` the seed; ``<time>`` the start as ``YYYYmmdd-HHMMSS`` (``-1``,
``-2``, ... for runs started in the same second). Folders are found again by their config
(:func:`find_run`), never by their name, and ``--resume`` takes any folder's path.

A ``train`` run's folder holds:

* ``config.json`` -- the :class:`~baselines.train.TrainConfig` (rewritten only by an explicit
  ``--resume --iters K`` extension);
* ``metrics.csv`` -- one row per evaluated iteration, appended as the run goes;
* ``checkpoint.npz`` -- the state at the start of an iteration t: policy parameters, optimiser
  and estimator random state, the previous iterate's tables (for the L1 change), and how many
  metric rows and snapshots precede t;
* ``snapshots/<first>.npy`` -- the tabulated policies at the evaluated iterations, one chunk per
  checkpoint interval (appending never rewrites earlier chunks: I/O is linear in the run);
* ``final.npz`` -- the final policy tables, every snapshot and whether the stop rule ended the run;
  its presence marks a finished run;
* ``.lock`` -- locked (:meth:`RunFolder.lock`) by the one process writing the folder, fresh or
  resumed; a second writer is refused before it writes.

Every file is replaced atomically (temporary file in the same folder, ``fsync``, ``os.replace``),
so a kill leaves either the old or the new version; stray temporary files are ignored and removed
on resume. Damaged files raise :class:`DamagedRunError` naming the file and what to do.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import time
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "DamagedRunError",
    "RunInUseError",
    "RunFolder",
    "run_name",
    "atomic_write_bytes",
    "atomic_savez",
    "find_run",
    "config_record",
    "changed_entries",
    "pack_tables",
    "unpack_tables",
]

TMP_SUFFIX = ".tmp-write"
#: The entries every ``train`` run's final.npz has.
TRAIN_FINAL = ("snapshots", "policy_0", "stopped", "iteration")


class DamagedRunError(ValueError):
    """A file of a run folder cannot be read; the message names it and what to do."""


class RunInUseError(ValueError):
    """Another process is writing the run folder (it holds the folder's lock)."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (temp file in the same folder, fsync, rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + TMP_SUFFIX)
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_savez(path: Path, **arrays: Any) -> None:
    """``np.savez`` to ``path`` atomically."""
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def pack_tables(tables: Sequence[np.ndarray]) -> np.ndarray:
    """Per-agent tables (S, |A_i|) -> one zero-padded float32 array (N, S, max |A_i|)."""
    width = max(t.shape[1] for t in tables)
    out = np.zeros((len(tables), tables[0].shape[0], width), np.float32)
    for i, t in enumerate(tables):
        out[i, :, : t.shape[1]] = t
    return out


def unpack_tables(packed: np.ndarray, action_sizes: Sequence[int]) -> list[np.ndarray]:
    """Inverse of :func:`pack_tables` (float64)."""
    return [np.asarray(packed[i, :, :k], dtype=np.float64) for i, k in enumerate(action_sizes)]


def config_record(config: dict[str, Any], drop: Sequence[str]) -> dict[str, Any]:
    """What a checkpoint records of its run's config to be checked on resume: ``config`` without
    the entries in ``drop`` (those an extension or a moved folder may change), as JSON reads it
    back (tuples become lists), so that a record read from a file compares equal to a fresh one."""
    return json.loads(json.dumps({k: v for k, v in config.items() if k not in drop}, sort_keys=True))


def changed_entries(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """The sorted keys whose values differ between two config records (a key only one has counts)."""
    missing = object()
    return sorted(k for k in {*saved, *current} if saved.get(k, missing) != current.get(k, missing))


def _load_npz(path: Path, what: str) -> dict[str, np.ndarray]:
    try:
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):  # a plain .npy array under the .npz name
            raise ValueError("not an .npz archive")
        with z:
            return {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as err:
        raise DamagedRunError(f"{path}: cannot read the {what} ({err}); {_ADVICE[what]}") from None


_ADVICE = {
    "checkpoint": "delete it to restart the run from iteration 0 with the same config",
    "final results": "delete final.npz and resume the run to write it again",
    "snapshot chunk": "delete checkpoint.npz and the snapshots folder to restart the run",
}


def run_name(env: str, algo: str, seed: int, layout: str | Sequence[str] | None = None) -> str:
    """The name of a run folder without its time: ``<env>__<algo>__<seed>``.

    Args:
        env: A registered id (``"mpg/Congestion-v0"``); its namespace is dropped.
        algo: The algorithm's label (``"inpg"``, ``"dcpg-exact"``, ``"sb3-ppo"``).
        seed: The seed.
        layout: The multi-task GridWorld's layout: a name, or grid strings (``custom<N>``).

    Returns:
        E.g. ``"Congestion-v0__inpg__0"``, ``"MultiTaskGridWorld-v0-no_conflict__dcpg-exact__3"``.
    """
    name = env.split("/")[-1]
    if layout is not None:
        name += "-" + (layout if isinstance(layout, str) else f"custom{len(layout)}")
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in f"{name}__{algo}__{int(seed)}")
    return safe


class RunFolder:
    """One run's folder (see the module docstring).

    Args:
        path: The folder.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    # ------------------------------------------------------------------ creation
    @classmethod
    def create(cls, out: str | Path, name: str) -> RunFolder:
        """A new folder ``<out>/<name>__<time>`` (suffixed if it exists); ``name`` from :func:`run_name`.

        Raises:
            ValueError: If ``out`` cannot receive the folder.
        """
        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = Path(out) / f"{name}__{stamp}"
        try:
            base.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ValueError(
                f"out {str(out)!r}: cannot create the run folder {str(base)!r} ({err.strerror})"
            ) from None
        path, k = base, 1
        while True:  # mkdir claims the name atomically: runs started in the same second by
            try:  # parallel workers get -1, -2, ... (an exists() check first would race)
                path.mkdir()
                break
            except FileExistsError:
                path = base.with_name(f"{base.name}-{k}")
                k += 1
            except OSError as err:
                raise ValueError(
                    f"out {str(out)!r}: cannot create the run folder {str(path)!r} ({err.strerror})"
                ) from None
        return cls(path)

    # ------------------------------------------------------------------ one writer
    @contextlib.contextmanager
    def lock(self) -> Iterator[RunFolder]:
        """Hold the folder's writer lock while the block runs: one writer per run folder.

        The lock is an advisory ``flock`` on ``<folder>/.lock``; the operating system releases it
        when its process ends, also on ``kill -9``, so a killed run never leaves its folder locked.
        Where ``fcntl`` does not exist (Windows) the block runs unlocked.

        Raises:
            RunInUseError: Another process holds the lock (its pid is in the message).
        """
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX
            yield self
            return
        lock_path = self.path / ".lock"
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise ValueError(f"{self.path}: cannot open its lock file ({err.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise RunInUseError(
                f"{self.path}: another process (pid {holder}) is writing this run folder; "
                "wait for it to end (or stop it) before resuming"
            ) from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
            yield self
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    def write_config(self, config: dict[str, Any]) -> None:
        atomic_write_bytes(self.config_path, (json.dumps(config, indent=2) + "\n").encode())

    def read_config(self) -> dict[str, Any]:
        """The saved config.

        Raises:
            ValueError: No config.json (not a run folder); DamagedRunError: unreadable.
        """
        if not self.config_path.is_file():
            raise ValueError(f"resume: {str(self.path)!r} is not a run folder (no config.json)")
        try:
            cfg = json.loads(self.config_path.read_text())
        except (OSError, ValueError) as err:
            raise DamagedRunError(
                f"{self.config_path}: not valid JSON ({err}); the run cannot be resumed, start a new one"
            ) from None
        if not isinstance(cfg, dict):
            raise DamagedRunError(f"{self.config_path}: not a run config (a JSON object); start a new run")
        return cfg

    def clean_temporaries(self) -> None:
        """Remove the temporary files of writes a kill interrupted."""
        for p in [*self.path.glob(f"*{TMP_SUFFIX}"), *self.path.glob(f"snapshots/*{TMP_SUFFIX}")]:
            p.unlink(missing_ok=True)

    # ------------------------------------------------------------------ metrics
    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.csv"

    def start_metrics(self, fields: Sequence[str], rows: Sequence[dict[str, float]] = ()) -> None:
        """(Re)write metrics.csv with ``fields`` and ``rows``, atomically."""
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(fields), lineterminator="\n")
        w.writeheader()
        w.writerows([{k: _fmt(r[k]) for k in fields} for r in rows])
        atomic_write_bytes(self.metrics_path, buf.getvalue().encode())

    def append_metrics(self, fields: Sequence[str], row: dict[str, float]) -> None:
        """Append one row (a kill can truncate only this last row; resume drops it)."""
        with open(self.metrics_path, "a", newline="") as f:
            f.write(",".join(_fmt(row[k]) for k in fields) + "\n")

    def read_metrics(self, fields: Sequence[str], before: int | None = None) -> list[dict[str, float]]:
        """The rows (iteration < ``before`` if given), as numbers.

        Raises:
            DamagedRunError: A row before ``before`` is missing or malformed, or the header differs.
        """
        try:
            lines = self.metrics_path.read_text().splitlines()
        except OSError as err:
            raise DamagedRunError(
                f"{self.metrics_path}: cannot read it ({err.strerror}); {_RESTART}"
            ) from None
        if not lines or lines[0].split(",") != list(fields):
            raise DamagedRunError(f"{self.metrics_path}: unexpected header; {_RESTART}")
        rows = []
        for n, line in enumerate(lines[1:], 2):
            cells = line.split(",")
            try:
                row = {
                    k: (int(v) if k == "iteration" else float(v)) for k, v in zip(fields, cells, strict=True)
                }
            except ValueError:
                if before is None or _first_int(cells) >= before:
                    break  # a row the kill cut short, after the checkpoint: dropped
                raise DamagedRunError(
                    f"{self.metrics_path}: line {n} is damaged ({line!r}); {_RESTART}"
                ) from None
            if before is not None and row["iteration"] >= before:
                break
            rows.append(row)
        return rows

    # ------------------------------------------------------------------ snapshots
    @property
    def snapshot_dir(self) -> Path:
        return self.path / "snapshots"

    def append_snapshots(self, first: int, snaps: Sequence[np.ndarray]) -> None:
        """Write snapshots ``first .. first + len - 1`` as one chunk (atomically)."""
        if not snaps:
            return
        self.snapshot_dir.mkdir(exist_ok=True)
        buf = io.BytesIO()
        np.save(buf, np.stack(snaps))
        atomic_write_bytes(self.snapshot_dir / f"{first:08d}.npy", buf.getvalue())

    def load_snapshots(self, count: int) -> list[np.ndarray]:
        """The first ``count`` snapshots; chunks past them (written after the checkpoint) are
        deleted.

        Raises:
            DamagedRunError: A chunk is missing or unreadable.
        """
        out: list[np.ndarray] = []
        if self.snapshot_dir.exists() and not self.snapshot_dir.is_dir():
            raise DamagedRunError(f"{self.snapshot_dir}: not a folder; {_RESTART}")
        chunks = sorted(self.snapshot_dir.glob("*.npy")) if self.snapshot_dir.is_dir() else []
        for p in chunks:
            if not p.stem.isdigit():
                raise DamagedRunError(f"{p}: not a snapshot chunk (named <first>.npy); remove it")
            first = int(p.stem)
            if first >= count:
                p.unlink()
                continue
            if first != len(out):
                raise DamagedRunError(f"{p}: expected a chunk starting at snapshot {len(out)}; {_RESTART}")
            try:
                arr = np.load(p, allow_pickle=False)
                if not isinstance(arr, np.ndarray) or arr.ndim != 4:
                    raise ValueError("not an array of snapshots, shape (K, N, S, max |A_i|)")
            except (OSError, ValueError, EOFError) as err:
                raise DamagedRunError(f"{p}: cannot read the snapshot chunk ({err}); {_RESTART}") from None
            out.extend(arr[: count - first])
        if len(out) != count:
            raise DamagedRunError(
                f"{self.snapshot_dir}: {len(out)} snapshots found, the checkpoint needs {count}; {_RESTART}"
            )
        return out

    # ------------------------------------------------------------------ checkpoint and final
    @property
    def checkpoint_path(self) -> Path:
        return self.path / "checkpoint.npz"

    @property
    def final_path(self) -> Path:
        return self.path / "final.npz"

    def save_checkpoint(self, **arrays: Any) -> None:
        atomic_savez(self.checkpoint_path, **arrays)

    def load_checkpoint(self) -> dict[str, np.ndarray] | None:
        """The checkpoint, or None when the run was killed before its first one."""
        if not self.checkpoint_path.exists():
            return None
        return _load_npz(self.checkpoint_path, "checkpoint")

    def save_final(self, **arrays: Any) -> None:
        atomic_savez(self.final_path, **arrays)

    def load_final(self, required: Sequence[str] = ()) -> dict[str, np.ndarray]:
        """final.npz's arrays.

        Args:
            required: Entries it must have (a ``train`` run's: ``TRAIN_FINAL``).

        Raises:
            DamagedRunError: Unreadable, or without a required entry.
        """
        fin = _load_npz(self.final_path, "final results")
        missing = [k for k in required if k not in fin]
        if missing:
            raise DamagedRunError(
                f"{self.final_path}: no {' or '.join(map(repr, missing))} entry; {_ADVICE['final results']}"
            )
        return fin

    @property
    def finished(self) -> bool:
        return self.final_path.exists()


_RESTART = "delete checkpoint.npz, metrics.csv and the snapshots folder to restart the run"


def _fmt(v: Any) -> str:
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return repr(float(v))


def _first_int(cells: Sequence[str]) -> int:
    try:
        return int(cells[0])
    except (ValueError, IndexError):
        return -1


def find_run(out: str | Path, config: dict[str, Any]) -> Path | None:
    """The folder under ``out`` of a finished (preferred) or interrupted run of exactly ``config``."""
    root = Path(out)
    if not root.is_dir():
        return None
    key = json.dumps(config, sort_keys=True)
    found = None
    for d in sorted(root.iterdir()):
        try:
            same = json.dumps(json.loads((d / "config.json").read_text()), sort_keys=True) == key
        except (OSError, ValueError):
            continue
        if same and (d / "final.npz").exists():
            return d
        if same and found is None:
            found = d
    return found
