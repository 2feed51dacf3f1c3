"""Scalar networks and the uv model at the edge of stability: losses, exact GD maps, gradient flow, sharpness.

Scalar network (Kreisler et al. 2023): f(w) = prod_i w_i, L(w) = (f - y)^2 / 2. Depth is padded to a fixed
`dmax` with a boolean `mask` (padded entries are held at 1 and get no gradient), so several depths share one
compiled, vmapped run. uv model (Lewkowycz et al. 2020): params p = (u, v) stacked as shape (2, n),
f = u.v / sqrt(n), L = (f - y)^2 / 2, curvature lambda = (|u|^2 + |v|^2) / n. Self-stabilisation two-variable
map (Damian et al. 2023). GD is always the exact discrete map (toymodels.iterate.iterate / lax.scan).

Sharpness = largest *algebraic* eigenvalue of the Hessian of the loss actually optimised: `hessian_sharpness`
(exact eigvalsh) for small models, `lanczos_max_eig` / `power_max_eig` (Hessian-vector products) for larger ones.
Never imports `derivations`.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float

from .flow import FlowResult, gradient_flow, negative_gradient
from .iterate import IterateResult, gd_step, iterate
from .linalg import hessian_sharpness, hvp_fn, lanczos_max_eig, power_max_eig

__all__ = [
    "depth_mask",
    "scalar_net_output",
    "scalar_net_loss",
    "scalar_gd_step",
    "hessian_sharpness",
    "lanczos_max_eig",
    "power_max_eig",
    "hvp_fn",
    "run_scalar_gd",
    "run_scalar_gf",
    "manifold_point",
    "uv_init",
    "uv_output",
    "uv_curvature",
    "uv_loss",
    "uv_gd_step",
    "run_uv_gd",
    "self_stab_step",
    "run_self_stab",
]


# ----------------------------------------------------------------------------------------------------------
# input checks (concrete values only: traced values pass through)
# ----------------------------------------------------------------------------------------------------------


def _concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def _check_positive(name, x):
    if _concrete(x):
        arr = np.asarray(x, dtype=float)
        if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
            raise ValueError(f"{name} must be positive and finite, got {x!r}")


def _check_vector(name, w):
    if _concrete(w):
        arr = np.asarray(w)
        if arr.ndim != 1 or arr.size < 1:
            raise ValueError(f"{name} must be a 1-D array, got shape {arr.shape}")
        if arr.dtype.kind not in "fiu":
            raise TypeError(f"{name} must hold real numbers, got dtype {arr.dtype}")
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} contains NaN or inf")
    return jnp.asarray(w)


def _mask_or_all(w, mask):
    if mask is None:
        return jnp.ones(w.shape, dtype=bool)
    mask = jnp.asarray(mask)
    if mask.shape != w.shape:
        raise ValueError(f"mask must have the shape of w {w.shape}, got {mask.shape}")
    return mask


# ----------------------------------------------------------------------------------------------------------
# scalar network
# ----------------------------------------------------------------------------------------------------------


def depth_mask(depth, dmax: int) -> Bool[Array, " dmax"]:
    """Boolean mask of the first `depth` of `dmax` coordinates (depth may be traced)."""
    if not isinstance(dmax, int) or dmax < 1:
        raise ValueError(f"dmax must be a positive int, got {dmax!r}")
    if _concrete(depth) and not (1 <= int(depth) <= dmax):
        raise ValueError(f"depth must be in 1..{dmax}, got {depth!r}")
    return jnp.arange(dmax) < depth


def scalar_net_output(w: Float[Array, " d"], mask=None) -> Float[Array, ""]:
    """f(w) = prod_i w_i over the unmasked coordinates (Kreisler et al. 2023). w: (d,)."""
    mask = _mask_or_all(w, mask)
    return jnp.prod(jnp.where(mask, w, 1.0))


def scalar_net_loss(w: Float[Array, " d"], y=1.0, mask=None) -> Float[Array, ""]:
    """L(w) = (prod_i w_i - y)^2 / 2 (Kreisler et al. 2023). w: (d,)."""
    return 0.5 * (scalar_net_output(w, mask) - y) ** 2


def scalar_gd_step(eta, y=1.0, mask=None) -> Callable:
    """GD map w <- w - eta grad L(w) for the scalar network (padded coordinates have zero gradient)."""
    _check_positive("eta", eta)
    return gd_step(lambda w: scalar_net_loss(w, y, mask), eta)


def run_scalar_gd(w0, eta, num_steps: int, *, y=1.0, mask=None, save_every: int = 1, blowup=1e6) -> IterateResult:
    """Iterate the exact GD map of the scalar network; saves loss, f, sharpness (eigvalsh) and w. w0: (d,)."""
    w0 = _check_vector("w0", w0)
    _check_positive("eta", eta)
    mask = _mask_or_all(w0, mask)
    loss = lambda w: scalar_net_loss(w, y, mask)  # noqa: E731

    def observables(w):
        return {"loss": loss(w), "f": scalar_net_output(w, mask), "sharpness": hessian_sharpness(loss, w), "w": w}

    return iterate(scalar_gd_step(eta, y, mask), w0, num_steps, save_every=save_every, observables=observables,
                   blowup=blowup)


def run_scalar_gf(w0, ts, *, y=1.0, mask=None, rtol=1e-10, atol=1e-12, max_steps=100_000) -> FlowResult:
    """Integrate gradient flow dw/dt = -grad L(w) (diffrax Tsit5) and save loss, sharpness (eigvalsh) and w."""
    w0 = _check_vector("w0", w0)
    mask = _mask_or_all(w0, mask)
    loss = lambda w: scalar_net_loss(w, y, mask)  # noqa: E731

    def observables(w):
        return {"loss": loss(w), "sharpness": hessian_sharpness(loss, w), "w": w}

    return gradient_flow(negative_gradient(loss), w0, ts, observables=observables, rtol=rtol, atol=atol,
                         max_steps=max_steps)


def manifold_point(phi, depth, dmax: int, y=1.0, num_iter: int = 200) -> Float[Array, " dmax"]:
    """A global minimiser s = (a, b, ..., b, 1 pad) with a b^(depth-1) = y and sharpness y^2 sum 1/s_i^2 = phi.

    Takes the branch a <= b (one small coordinate); phi must be >= depth y^(2-2/depth). Found by bisection on
    log a in [log(y/sqrt(phi)), log(y)/depth], where the sharpness is decreasing in a. Traceable.
    """
    mask = depth_mask(depth, dmax)
    y = jnp.abs(jnp.asarray(y, dtype=float))
    depth = jnp.asarray(depth, dtype=float)

    def sharp(la):
        lb = (jnp.log(y) - la) / (depth - 1.0)
        return y**2 * (jnp.exp(-2 * la) + (depth - 1.0) * jnp.exp(-2 * lb))

    lo, hi = jnp.log(y / jnp.sqrt(phi)), jnp.log(y) / depth

    def body(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        too_sharp = sharp(mid) > phi  # sharpness decreases in a: root is to the right
        return jnp.where(too_sharp, mid, lo), jnp.where(too_sharp, hi, mid)

    lo, hi = jax.lax.fori_loop(0, num_iter, body, (lo, hi))
    la = 0.5 * (lo + hi)
    b = jnp.exp((jnp.log(y) - la) / (depth - 1.0))
    idx = jnp.arange(dmax)
    return jnp.where(idx == 0, jnp.exp(la), jnp.where(mask, b, 1.0))


# ----------------------------------------------------------------------------------------------------------
# uv model
# ----------------------------------------------------------------------------------------------------------


def _uv_width(params, n):
    """(effective width, mask over the padded width axis); n may be traced when params are zero-padded."""
    nmax = params.shape[1]
    if n is None:
        return jnp.asarray(float(nmax)), jnp.ones(nmax, dtype=bool)
    if _concrete(n) and not (1 <= float(n) <= nmax):
        raise ValueError(f"n must be in 1..{nmax} (the padded width), got {n!r}")
    return jnp.asarray(n, dtype=float), jnp.arange(nmax) < n


def uv_init(n, lam0, f0, key, nmax: int | None = None) -> Float[Array, "2 nmax"]:
    """Width-n uv init with exactly (|u|^2+|v|^2)/n = lam0 and u.v/sqrt(n) = f0 (random orthonormal directions).

    u = sqrt(n)(p q1 + q q2), v = sqrt(n)(p q1 - q q2), p^2 + q^2 = lam0/2, p^2 - q^2 = f0/sqrt(n); requires
    |f0|/sqrt(n) <= lam0/2. With `nmax` the result is zero-padded to width nmax (n may then be traced).
    """
    if nmax is None:
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 2:
            raise ValueError(f"n must be an int >= 2, got {n!r}")
        nmax = int(n)
    if not isinstance(nmax, int) or nmax < 2:
        raise ValueError(f"nmax must be an int >= 2, got {nmax!r}")
    if _concrete(n) and not (2 <= float(n) <= nmax):
        raise ValueError(f"n must be in 2..{nmax}, got {n!r}")
    _check_positive("lam0", lam0)
    if _concrete(lam0) and _concrete(f0) and _concrete(n) and abs(float(f0)) / np.sqrt(float(n)) > float(lam0) / 2:
        raise ValueError(f"f0 must satisfy |f0|/sqrt(n) <= lam0/2, got f0={f0!r}, lam0={lam0!r}, n={n}")
    mask = jnp.arange(nmax) < n
    g = jnp.where(mask, jax.random.normal(key, (2, nmax)), 0.0)
    q1 = g[0] / jnp.linalg.norm(g[0])
    q2 = g[1] - jnp.dot(g[1], q1) * q1
    q2 = q2 / jnp.linalg.norm(q2)
    sn = jnp.sqrt(jnp.asarray(n, dtype=float))
    p2 = (lam0 / 2 + f0 / sn) / 2
    q2c = (lam0 / 2 - f0 / sn) / 2
    p, q = jnp.sqrt(p2), jnp.sqrt(q2c)
    return jnp.stack([sn * (p * q1 + q * q2), sn * (p * q1 - q * q2)])


def uv_output(params: Float[Array, "2 n"], n=None) -> Float[Array, ""]:
    """f = u.v / sqrt(n) (Lewkowycz et al. 2020). params: (2, nmax); entries beyond width n (if given) are ignored."""
    nn, mask = _uv_width(params, n)
    return jnp.sum(jnp.where(mask, params[0] * params[1], 0.0)) / jnp.sqrt(nn)


def uv_curvature(params: Float[Array, "2 n"], n=None) -> Float[Array, ""]:
    """NTK / curvature lambda = (|u|^2 + |v|^2) / n (Lewkowycz et al. 2020). params: (2, nmax)."""
    nn, mask = _uv_width(params, n)
    return jnp.sum(jnp.where(mask, params**2, 0.0)) / nn


def uv_loss(params: Float[Array, "2 n"], y=0.0, n=None) -> Float[Array, ""]:
    """L = (u.v/sqrt(n) - y)^2 / 2 (Lewkowycz et al. 2020)."""
    return 0.5 * (uv_output(params, n) - y) ** 2


def uv_gd_step(eta, y=0.0, n=None) -> Callable:
    """GD map of the uv model, params <- params - eta grad L (jax.grad of the actual loss)."""
    _check_positive("eta", eta)
    return gd_step(lambda p: uv_loss(p, y, n), eta)


def run_uv_gd(params0, eta, num_steps: int, *, y=0.0, n=None, save_every: int = 1, blowup=1e8) -> IterateResult:
    """Iterate uv-model GD; saves f, lambda and loss. params0: (2, nmax) (zero-padded beyond width n)."""
    params0 = jnp.asarray(params0)
    if params0.ndim != 2 or params0.shape[0] != 2:
        raise ValueError(f"params0 must have shape (2, n), got {params0.shape}")
    _check_positive("eta", eta)

    def observables(p):
        return {"f": uv_output(p, n), "lam": uv_curvature(p, n), "loss": uv_loss(p, y, n)}

    return iterate(uv_gd_step(eta, y, n), params0, num_steps, save_every=save_every, observables=observables,
                   blowup=blowup)


# ----------------------------------------------------------------------------------------------------------
# self-stabilisation two-variable model (Damian et al. 2023)
# ----------------------------------------------------------------------------------------------------------


def self_stab_step(eta, alpha, beta) -> Callable:
    """x' = -(1 + eta y) x,  y' = y + eta (alpha - beta x^2 / 2) on state (x, y) of shape (2,) (Damian et al. 2023)."""
    _check_positive("eta", eta)

    def step(s, k):
        x, yv = s[0], s[1]
        return jnp.stack([-(1.0 + eta * yv) * x, yv + eta * (alpha - beta * x**2 / 2.0)])

    return step


def run_self_stab(x0, y0, eta, alpha, beta, num_steps: int, *, save_every: int = 1, blowup=1e6) -> IterateResult:
    """Iterate the self-stabilisation map from (x0, y0); saves the state (x, y)."""
    _check_positive("eta", eta)
    s0 = jnp.stack([jnp.asarray(x0, dtype=float), jnp.asarray(y0, dtype=float)])
    return iterate(self_stab_step(eta, alpha, beta), s0, num_steps, save_every=save_every, blowup=blowup)
