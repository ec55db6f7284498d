"""decrimkit: causal evaluation of drug decriminalization policies.

Importing decrimkit turns on JAX's 64-bit mode (``jax_enable_x64``), the one process-wide setting
the toolkit accepts: estimates must match the reference packages to 1e-6.
"""

from __future__ import annotations

import jax

jax.config.update("jax_enable_x64", True)

__version__ = "0.1.0"

from decrimkit.errors import (  # noqa: E402
    ConvergenceError,
    DataError,
    DecrimkitError,
    DecrimkitWarning,
    DesignError,
    PanelError,
    PlanError,
    RegistryError,
    SpecificationError,
)
from decrimkit.panel import Panel  # noqa: E402

__all__ = [
    "__version__",
    "Panel",
    "DecrimkitError",
    "PanelError",
    "DataError",
    "DesignError",
    "SpecificationError",
    "ConvergenceError",
    "PlanError",
    "RegistryError",
    "DecrimkitWarning",
    "etable",
]


def __getattr__(name: str) -> object:
    # decrimkit.etable loads the table renderers (maketables, great_tables) on first use only
    if name == "etable":
        from decrimkit.reporting.etable import etable

        return etable
    raise AttributeError(f"module 'decrimkit' has no attribute {name!r}")
