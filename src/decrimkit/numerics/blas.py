"""One BLAS thread for code made of many small matrix products.

OpenBLAS splits even a (9 x 50,000) @ (50,000 x 2) product across its threads; on a busy machine the
threads' hand-offs cost more than the arithmetic (measured on a loaded 2-core machine: 7.5 ms with the
default threads, 0.17 ms with one). :func:`one_blas_thread` limits BLAS to one thread for a block of
such code. The controller that finds the loaded BLAS libraries is built once (about 1 ms); entering
and leaving the limit then costs microseconds.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from typing import Any

__all__ = ["one_blas_thread"]


@functools.cache
def _controller() -> Any:
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        return None
    return ThreadpoolController()


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """Limit the BLAS (and any OpenMP) libraries loaded in this process to one thread inside the block."""
    ctl = _controller()
    if ctl is None:  # pragma: no cover - threadpoolctl is a dependency
        yield
        return
    with ctl.limit(limits=1):
        yield
