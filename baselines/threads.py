"""How many threads torch uses for our small networks: one, unless the user chose.

Every network this package trains or tabulates is small (at most a few hundred units per layer,
batches of at most a few thousand rows). On such work torch's intra-op threads cost more than they
give: each operation is split, handed to OpenMP workers and joined again, and with fewer free cores
than threads (a laptop running other things, a shared machine, several worker processes) the
workers spin and wait for each other. Measured with ``benchmarks/bench_threads.py`` on 2 shared
cores (table in the README): the README's SB3 example and ``train --algo nn_pg`` run several times
faster on one thread than on torch's default (one thread per physical core).

So every place where a user reaches torch through us -- the ``python -m baselines`` commands (they
build networks through the classes below), torchrun ranks of distributed DCPG, the SB3, TorchRL,
RLlib and BenchMARL helpers and the tabulation of a policy -- calls :func:`torch_threads`, which
sets torch's intra-op thread count to 1 **unless the user chose a count**, checked in this order:

1. ``MPG_TORCH_THREADS=k`` in the environment: k threads (``MPG_TORCH_THREADS=default``: leave
   torch's own count, e.g. for large networks or to measure the difference);
2. ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS`` in the environment: torch already follows it
   (``torchrun`` sets ``OMP_NUM_THREADS=1`` for several ranks per machine);
3. a count set with ``torch.set_num_threads`` before our first call or since our last one: kept.
   Without an environment variable torch starts its intra-op pool at the size of its inter-op
   pool (one thread per physical core), and that is how a user's count is told apart: a count
   equal to torch's start-up count cannot be (set ``MPG_TORCH_THREADS`` to keep it) -- TorchRL's
   ``SerialEnv.close()`` restores that count, and our next call sets ours again -- and where the
   two pools start at different sizes (some MKL builds in a container restricted to a few cores)
   torch's count is left as it is.

It never touches BLAS threads of numpy (the exact solvers limit those themselves) nor torch's
inter-op pool.
"""

from __future__ import annotations

import os

__all__ = ["torch_threads", "ENV_VAR"]

#: The environment variable that sets the thread count of our torch work (or ``default``).
ENV_VAR = "MPG_TORCH_THREADS"
_STANDARD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
_ours: int | None = None  # the count this module last set in this process


def _requested() -> int | str | None:
    """The count ``MPG_TORCH_THREADS`` asks for: an int >= 1, ``"default"`` or None (unset)."""
    raw = os.environ.get(ENV_VAR)
    if raw is None or raw.strip() == "":
        return None
    text = raw.strip().lower()
    if text == "default":
        return "default"
    try:
        k = int(text)
    except ValueError:
        k = 0
    if k < 1:
        raise ValueError(f"{ENV_VAR} must be a positive integer or 'default', got {raw!r}")
    return k


def torch_threads(n: int = 1) -> int:
    """Set torch's intra-op threads to ``n`` for small networks, unless the user chose a count.

    See the module docstring for the order of precedence (``MPG_TORCH_THREADS``, then
    ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS``, then a count the user set with
    ``torch.set_num_threads``). Safe to call any number of times; imports torch.

    Args:
        n: The count for our small networks (default 1).

    Returns:
        The number of intra-op threads torch uses afterwards.

    Raises:
        ValueError: ``n < 1`` or a bad ``MPG_TORCH_THREADS``.
    """
    global _ours
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    import torch

    asked = _requested()
    current = torch.get_num_threads()
    if asked == "default":
        return current
    if isinstance(asked, int):
        target = asked
    elif any(os.environ.get(v, "").strip() for v in _STANDARD_VARS):
        return current
    elif current not in (torch.get_num_interop_threads(), _ours):
        # without an environment variable torch starts its intra-op pool at the size of its
        # inter-op pool (one thread per physical core); any other count, or a change since we set
        # ours, was set by the user -- except a return to the start-up count, which libraries do
        # (TorchRL's SerialEnv.close() restores the count torch had when torchrl was imported)
        return current
    else:
        target = n
    if current != target:
        torch.set_num_threads(target)
    _ours = target
    return target
