"""Input checks shared by the derivations modules: only concrete (non-traced) values are checked."""

import jax
import numpy as np


def concrete(x):
    """x as a float numpy array if it is concrete, None if it is a JAX tracer (checked later, or never)."""
    if isinstance(x, jax.core.Tracer):
        return None
    try:
        return np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"expected a real array, got {type(x).__name__}") from None


def check_depth(depth):
    """A network depth: an int >= 2 (ValueError naming `depth` otherwise)."""
    if not isinstance(depth, (int, np.integer)) or isinstance(depth, bool) or depth < 2:
        raise ValueError(f"depth must be an int >= 2, got {depth!r}")
    return int(depth)
