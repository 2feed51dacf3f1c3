"""Experiments and the sweep engine: theory (derivations/) vs simulation (toymodels/) over grids, stored with provenance.

Importing `sims` enables float64 in JAX: validation runs in double precision.
"""

import jax

jax.config.update("jax_enable_x64", True)

from .grid import Grid, parse_range, parse_set  # noqa: E402
from .registry import Check, Experiment, register  # noqa: E402
from .store import Store, StoreMismatch  # noqa: E402
from .sweep import sweep, to_dataset  # noqa: E402

__all__ = ["Check", "Experiment", "Grid", "Store", "StoreMismatch", "parse_range", "parse_set", "register", "sweep", "to_dataset"]
