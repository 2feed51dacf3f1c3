"""Input checks shared by the toymodels simulators (concrete values only; traced values pass through)."""

import jax
import jax.numpy as jnp
import numpy as np


def check_psd_matrix(name: str, M, n: int | None = None, *, psd: bool = True, strict: bool = False):
    """M as a float jnp array after checking it is a finite, symmetric, square (n x n if given) matrix, positive
    semi-definite (definite with strict=True) unless psd=False; ValueError/TypeError naming `name` otherwise."""
    shape = np.shape(M)
    if len(shape) != 2 or shape[0] != shape[1] or (n is not None and shape[0] != n):
        raise ValueError(f"{name} must be a square ({n or 'd'} x {n or 'd'}) matrix, got shape {shape}")
    if isinstance(M, jax.core.Tracer):
        return M
    try:
        a = np.asarray(M, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real ({n or 'd'} x {n or 'd'}) matrix") from None
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or inf")
    if not np.allclose(a, a.T, atol=1e-12 * max(1.0, np.abs(a).max())):
        raise ValueError(f"{name} must be symmetric")
    if psd:
        w = np.linalg.eigvalsh(a)
        tol = 1e-12 * max(1.0, np.abs(w).max())
        if w.min() < -tol or (strict and w.min() <= tol):
            raise ValueError(f"{name} must be positive {'definite' if strict else 'semi-definite'}")
    return jnp.asarray(a, dtype=jnp.result_type(float))
