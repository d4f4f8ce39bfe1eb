"""Test-session setup.

The exact solvers factor many tiny matrices; with pytest-xdist running one worker per core,
multi-threaded BLAS in every worker oversubscribes the CPU and slows such calls ~10x. One BLAS
thread per worker (set before numpy loads) avoids that.
"""

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
