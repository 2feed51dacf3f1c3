"""Sharpness (largest algebraic Hessian eigenvalue), shared by the families that need it.

Exact `eigvalsh` of the dense Hessian for small models (`hessian_sharpness`); for larger ones Hessian-vector
products (`hvp_fn`) with Lanczos (`lanczos_max_eig`, full reorthogonalisation) or a shifted power method
(`power_max_eig`). 'Largest algebraic' matters at the edge of stability, where lambda_min ~ -lambda_max.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

__all__ = ["hessian_sharpness", "hvp_fn", "lanczos_max_eig", "power_max_eig"]


def _concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def hessian_sharpness(loss: Callable[[Array], Array], w: Float[Array, " d"]) -> Float[Array, ""]:
    """Sharpness S(w) = lambda_max(Hess loss(w)), the largest algebraic eigenvalue, by exact eigvalsh. w: (d,)."""
    H = jax.hessian(loss)(w)
    return jnp.linalg.eigvalsh(0.5 * (H + H.T))[-1]


def hvp_fn(loss: Callable[[Array], Array], w: Array) -> Callable[[Array], Array]:
    """Hessian-vector product v -> Hess loss(w) v (forward-over-reverse); v has the shape of w."""
    g = jax.grad(loss)
    return lambda v: jax.jvp(g, (w,), (v,))[1]


def lanczos_max_eig(hvp: Callable[[Array], Array], v0: Float[Array, " d"], num_iter: int, key=None) -> Float[Array, ""]:
    """Largest algebraic eigenvalue of a symmetric operator by Lanczos with full reorthogonalisation.

    Cohen et al. 2021 use Lanczos ('LM'); here the top Ritz value of the num_iter x num_iter tridiagonal matrix
    is returned ('LA'), which is correct also when lambda_min ~ -lambda_max. On breakdown (invariant subspace)
    the iteration restarts with a fresh random vector orthogonal to the basis. v0: (d,), num_iter <= d.
    """
    v0 = jnp.asarray(v0)
    if v0.ndim != 1:
        raise ValueError(f"v0 must be a 1-D array, got shape {v0.shape}")
    d = v0.shape[0]
    if not isinstance(num_iter, int) or isinstance(num_iter, bool) or not (1 <= num_iter <= d):
        raise ValueError(f"num_iter must be an int in 1..{d}, got {num_iter!r}")
    if _concrete(v0) and not bool(jnp.all(jnp.isfinite(v0))):
        raise ValueError("v0 contains NaN or inf")
    key = jax.random.PRNGKey(0) if key is None else key
    m = num_iter
    V = jnp.zeros((m + 1, d), dtype=v0.dtype).at[0].set(v0 / jnp.linalg.norm(v0))
    alphas = jnp.zeros(m, dtype=v0.dtype)
    betas = jnp.zeros(m, dtype=v0.dtype)

    def orth(V, x):
        x = x - V.T @ (V @ x)
        return x - V.T @ (V @ x)

    def body(j, carry):
        V, alphas, betas = carry
        v = V[j]
        w = hvp(v)
        a = jnp.dot(w, v)
        w = orth(V, w - a * v)
        b = jnp.linalg.norm(w)
        scale = jnp.maximum(jnp.abs(a), jnp.max(jnp.abs(alphas))) + 1e-300
        broke = b <= 1e-10 * scale
        fresh = orth(V, jax.random.normal(jax.random.fold_in(key, j), (d,), dtype=v0.dtype))
        fresh = fresh / jnp.linalg.norm(fresh)
        nxt = jnp.where(broke, fresh, w / jnp.where(broke, 1.0, b))
        V = V.at[j + 1].set(nxt)
        return V, alphas.at[j].set(a), betas.at[j].set(jnp.where(broke, 0.0, b))

    V, alphas, betas = jax.lax.fori_loop(0, m, body, (V, alphas, betas))
    T = jnp.diag(alphas) + jnp.diag(betas[:-1], 1) + jnp.diag(betas[:-1], -1)
    return jnp.linalg.eigvalsh(T)[-1]


def power_max_eig(hvp: Callable[[Array], Array], v0: Float[Array, " d"], shift, num_iter: int) -> Float[Array, ""]:
    """Largest algebraic eigenvalue by power iteration on H + shift*I (shift >= -lambda_min makes it dominant).

    Returns the Rayleigh quotient v^T H v of the final iterate. Converges like ((lam_2 + c)/(lam_1 + c))^k.
    """
    v0 = jnp.asarray(v0)
    if v0.ndim != 1:
        raise ValueError(f"v0 must be a 1-D array, got shape {v0.shape}")
    if not isinstance(num_iter, int) or num_iter < 1:
        raise ValueError(f"num_iter must be a positive int, got {num_iter!r}")

    def body(_, v):
        x = hvp(v) + shift * v
        return x / jnp.linalg.norm(x)

    v = jax.lax.fori_loop(0, num_iter, body, v0 / jnp.linalg.norm(v0))
    return jnp.dot(v, hvp(v))
