"""Symmetric low-rank matrix sensing with a factored model X = U U^T (Burer-Monteiro), trained by GD, ScaledGD(lambda)
or gradient flow.

Problem: PSD truth M* (d x d, rank r*), measurements y_i = <A_i, M*> with symmetric Gaussian A_i = (G_i + G_i^T)/2
(G_i iid N(0, 1) entries, so E[<A, D> A] = D), i = 1..m. Loss f(U) = (1/4m) sum_i (<A_i, U U^T> - y_i)^2 with
gradient (1/m) sum_i (<A_i, UU^T> - y_i) A_i U; population loss (m -> inf) 1/4 ||U U^T - M*||_F^2 with gradient
(U U^T - M*) U. Steps: GD U <- U - eta grad f(U); ScaledGD(lambda) (Xu, Shen, Ma & Chi 2023)
U <- U - eta grad f(U) (U^T U + lambda I)^{-1}. All functions are jit/vmap-safe; zero columns of U stay zero under
every update, so a rank r <= r_max can be traced as a column mask.
"""

from __future__ import annotations

from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from . import flow as _flow
from . import iterate as _iterate

__all__ = [
    "SensingProblem",
    "sensing_matrices",
    "random_orthogonal",
    "psd_truth",
    "geometric_spectrum",
    "make_problem",
    "measure",
    "loss",
    "gradient",
    "population_loss",
    "population_gradient",
    "small_init",
    "column_mask",
    "gd_step",
    "scaled_gd_step",
    "run_gd",
    "run_scaled_gd",
    "gradient_flow",
    "population_flow",
    "eigenvalues",
    "recovery_error",
    "training_residual",
]


class SensingProblem(eqx.Module):
    """A sensing problem: A (m, d, d) symmetric Gaussian, y (m,) = <A_i, M*>, M_star (d, d) PSD."""

    A: Float[Array, "m d d"]
    y: Float[Array, " m"]
    M_star: Float[Array, "d d"]


def _is_tracer(x) -> bool:
    return isinstance(x, jax.core.Tracer)


def _check_pos_int(name, v):
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 1:
        raise ValueError(f"{name} must be a positive int, got {v!r}")
    return int(v)


def _check_positive(name, v):
    if _is_tracer(v):
        return v
    a = np.asarray(v, dtype=float)
    if not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise ValueError(f"{name} must be positive and finite, got {v!r}")
    return v


def _check_matrix(name, U, rows=None):
    if _is_tracer(U):
        return U
    a = np.asarray(U)
    if a.ndim != 2:
        raise ValueError(f"{name} must be a 2-D array, got shape {a.shape}")
    if rows is not None and a.shape[0] != rows:
        raise ValueError(f"{name} must have {rows} rows, got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.floating):
        raise TypeError(f"{name} must be a floating array, got dtype {a.dtype}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or inf")
    return U


def sensing_matrices(key, m: int, d: int) -> Float[Array, "m d d"]:
    """m symmetric Gaussian matrices A = (G + G^T)/2, G iid N(0, 1): diagonal N(0, 1), off-diagonal N(0, 1/2)."""
    m, d = _check_pos_int("m", m), _check_pos_int("d", d)
    G = jax.random.normal(key, (m, d, d))
    return 0.5 * (G + jnp.swapaxes(G, -1, -2))


def random_orthogonal(key, d: int) -> Float[Array, "d d"]:
    """Haar-random orthogonal d x d matrix (QR of a Gaussian with the sign of diag(R) fixed)."""
    d = _check_pos_int("d", d)
    q, r = jnp.linalg.qr(jax.random.normal(key, (d, d)))
    return q * jnp.sign(jnp.diag(r))[None, :]


def psd_truth(key, d: int, spectrum) -> Float[Array, "d d"]:
    """M* = V diag(spectrum) V^T with Haar V; `spectrum` (r*,) non-negative values, r* <= d."""
    d = _check_pos_int("d", d)
    spectrum = jnp.asarray(spectrum, dtype=float)
    if spectrum.ndim != 1 or spectrum.shape[0] > d:
        raise ValueError(f"spectrum must be 1-D with at most d = {d} entries, got shape {spectrum.shape}")
    if not _is_tracer(spectrum) and (not np.all(np.isfinite(spectrum)) or np.any(np.asarray(spectrum) < 0)):
        raise ValueError("spectrum must be finite and non-negative (M* is PSD)")
    V = random_orthogonal(key, d)[:, : spectrum.shape[0]]
    return (V * spectrum[None, :]) @ V.T


def geometric_spectrum(r_star: int, kappa, top=1.0) -> Float[Array, " r_star"]:
    """top * kappa^{-(j-1)/(r*-1)}, j = 1..r*: condition number kappa (kappa may be traced)."""
    r_star = _check_pos_int("r_star", r_star)
    _check_positive("kappa", kappa)
    if not _is_tracer(kappa) and float(kappa) < 1:
        raise ValueError(f"kappa must be >= 1, got {kappa!r}")
    expo = jnp.arange(r_star) / max(r_star - 1, 1)
    return top * jnp.asarray(kappa, dtype=float) ** (-expo)


def measure(A, X) -> Float[Array, " m"]:
    """The sensing operator A(X)_i = <A_i, X>: A (m, d, d), X (d, d) -> (m,)."""
    return jnp.einsum("mij,ij->m", A, X)


def make_problem(key, d: int, m: int, spectrum) -> SensingProblem:
    """Seeded problem: M* = psd_truth(key_1, d, spectrum), A = sensing_matrices(key_2, m, d), y = A(M*)."""
    k1, k2 = jax.random.split(key)
    M = psd_truth(k1, d, spectrum)
    A = sensing_matrices(k2, m, d)
    return SensingProblem(A=A, y=measure(A, M), M_star=M)


def loss(U, problem: SensingProblem):
    """f(U) = (1/4m) sum_i (<A_i, U U^T> - y_i)^2; U (d, r) -> scalar."""
    res = measure(problem.A, U @ U.T) - problem.y
    return 0.25 * jnp.mean(res**2)


def gradient(U, problem: SensingProblem):
    """grad f(U) = (1/m) sum_i (<A_i, U U^T> - y_i) A_i U (A_i symmetric); U (d, r) -> (d, r)."""
    res = measure(problem.A, U @ U.T) - problem.y
    return jnp.einsum("m,mij->ij", res, problem.A) @ U / problem.y.shape[0]


def population_loss(U, M):
    """Population loss (m -> inf) 1/4 ||U U^T - M||_F^2; U (d, r), M (d, d) -> scalar."""
    D = U @ U.T - M
    return 0.25 * jnp.sum(D * D)


def population_gradient(U, M):
    """Population gradient (U U^T - M) U; U (d, r), M (d, d) -> (d, r)."""
    return (U @ U.T - M) @ U


def small_init(key, d: int, r: int, alpha) -> Float[Array, "d r"]:
    """U0 = alpha * G with G iid N(0, 1) entries, shape (d, r) (Jin et al. 2023 / Stoger & Soltanolkotabi 2021)."""
    d, r = _check_pos_int("d", d), _check_pos_int("r", r)
    _check_positive("alpha", alpha)
    return alpha * jax.random.normal(key, (d, r))


def column_mask(r_max: int, r) -> Float[Array, " r_max"]:
    """1.0 on the first r of r_max columns, 0.0 after (r may be traced): U * mask has rank <= r for all time."""
    r_max = _check_pos_int("r_max", r_max)
    return (jnp.arange(r_max) < r).astype(float)


def gd_step(grad_fn: Callable, lr) -> Callable:
    """GD step U <- U - lr grad_fn(U), as step(U, k) for toymodels.iterate.iterate."""
    if not callable(grad_fn):
        raise TypeError("grad_fn must be callable as grad_fn(U)")
    _check_positive("lr", lr)

    def step(U, k):
        return U - lr * grad_fn(U)

    return step


def scaled_gd_step(grad_fn: Callable, lr, damping) -> Callable:
    """ScaledGD(lambda) step U <- U - lr grad_fn(U) (U^T U + damping I)^{-1} (Xu, Shen, Ma & Chi 2023)."""
    if not callable(grad_fn):
        raise TypeError("grad_fn must be callable as grad_fn(U)")
    _check_positive("lr", lr)
    _check_positive("damping", damping)

    def step(U, k):
        r = U.shape[1]
        P = U.T @ U + damping * jnp.eye(r, dtype=U.dtype)
        G = grad_fn(U)
        return U - lr * jnp.linalg.solve(P, G.T).T  # G P^{-1}, P symmetric

    return step


def _default_observables(M):
    return lambda U: {"eig": eigenvalues(U), "error": recovery_error(U, M)}


def run_gd(grad_fn: Callable, U0, lr, num_steps: int, *, save_every: int = 1, observables=None, blowup=1e8):
    """Iterate GD from U0 (d, r) for num_steps with toymodels.iterate.iterate -> IterateResult."""
    _check_matrix("U0", U0)
    return _iterate.iterate(
        gd_step(grad_fn, lr), U0, num_steps, save_every=save_every, observables=observables, blowup=blowup
    )


def run_scaled_gd(
    grad_fn: Callable, U0, lr, damping, num_steps: int, *, save_every: int = 1, observables=None, blowup=1e8
):
    """Iterate ScaledGD(damping) from U0 (d, r) for num_steps with toymodels.iterate.iterate -> IterateResult."""
    _check_matrix("U0", U0)
    return _iterate.iterate(
        scaled_gd_step(grad_fn, lr, damping), U0, num_steps, save_every=save_every, observables=observables,
        blowup=blowup,
    )


def gradient_flow(grad_fn: Callable, U0, ts, *, observables=None, rtol=1e-8, atol=1e-10, max_steps=200_000):
    """Gradient flow dU/dt = -grad_fn(U) from U0 (d, r), saved at ts (diffrax Tsit5) -> FlowResult."""
    if not callable(grad_fn):
        raise TypeError("grad_fn must be callable as grad_fn(U)")
    _check_matrix("U0", U0)
    return _flow.gradient_flow(
        lambda t, U, args: -grad_fn(U), U0, ts, observables=observables, rtol=rtol, atol=atol, max_steps=max_steps
    )


def population_flow(M, U0, ts, *, observables=None, rtol=1e-8, atol=1e-10, max_steps=200_000):
    """Population gradient flow dU/dt = (M - U U^T) U from U0 (d, r), M (d, d) symmetric, saved at ts -> FlowResult."""
    M = _check_matrix("M", M)
    if not _is_tracer(M):
        a = np.asarray(M)
        if a.shape[0] != a.shape[1] or not np.allclose(a, a.T):
            raise ValueError(f"M must be a symmetric square matrix, got shape {a.shape}")
    _check_matrix("U0", U0, rows=np.shape(M)[0])
    return gradient_flow(
        lambda U: population_gradient(U, M), U0, ts, observables=observables, rtol=rtol, atol=atol,
        max_steps=max_steps,
    )


def eigenvalues(U) -> Float[Array, " d"]:
    """Eigenvalues of X = U U^T in decreasing order; U (d, r) -> (d,)."""
    return jnp.linalg.eigvalsh(U @ U.T)[::-1]


def recovery_error(U, M):
    """||U U^T - M||_F; U (d, r), M (d, d) -> scalar."""
    D = U @ U.T - M
    return jnp.sqrt(jnp.sum(D * D))


def training_residual(U, problem: SensingProblem):
    """Relative training residual ||A(U U^T) - y||_2 / ||y||_2 (0 at an interpolating U); U (d, r) -> scalar."""
    res = measure(problem.A, U @ U.T) - problem.y
    return jnp.sqrt(jnp.sum(res**2) / jnp.sum(problem.y**2))
