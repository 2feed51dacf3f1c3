"""Divergence test shared by the integrators: a state has diverged when a leaf is non-finite or exceeds `blowup`."""

import jax
import jax.numpy as jnp
import numpy as np


def is_diverged(tree, blowup: float):
    """True if any floating leaf of `tree` is non-finite or has an entry with |x| > blowup (scalar bool array)."""
    leaves = [jnp.asarray(x) for x in jax.tree_util.tree_leaves(tree)]
    leaves = [x for x in leaves if jnp.issubdtype(x.dtype, jnp.inexact)]
    if not leaves:
        return jnp.asarray(False)
    bad = [jnp.any(~jnp.isfinite(x)) | jnp.any(jnp.abs(x) > blowup) for x in leaves]
    return jnp.any(jnp.stack(bad))


def check_blowup(blowup) -> float:
    """Validate the `blowup` threshold argument (positive float or inf)."""
    try:
        value = float(blowup)
    except (TypeError, ValueError):
        raise TypeError(f"blowup must be a positive number, got {blowup!r}") from None
    if not value > 0:
        raise ValueError(f"blowup must be positive, got {blowup!r}")
    return value


def check_finite_input(name: str, tree) -> None:
    """Raise ValueError naming `name` if a concrete (non-traced) floating leaf holds NaN or inf."""
    for leaf in jax.tree_util.tree_leaves(tree):
        if isinstance(leaf, jax.core.Tracer):
            continue
        arr = np.asarray(leaf)  # concrete: checked with numpy, outside any trace
        if np.issubdtype(arr.dtype, np.inexact) and not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or inf")
