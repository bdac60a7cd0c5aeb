"""One BLAS/OpenMP thread per process; the benchmark's entry points import this before numpy.

The serial baseline is one core of plain Python, so its numpy must not fan out to
every core; and the cluster already runs one worker process per core, where
OpenBLAS's default of one thread per CPU in every worker only oversubscribes the
cores (measured: a vectorised k-means iteration took 0.039 s with 2 threads per
worker and 0.017 s with 1).  Dask's worker nanny sets the same variables.  The
worker processes inherit them from the driver's environment.  Values already set
in the environment are kept.
"""

from __future__ import annotations

import os

VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

for _name in VARIABLES:
    os.environ.setdefault(_name, "1")
