"""Matrix sensing with a factored PSD model X = U U^T: closed forms of the population (m -> infinity) dynamics.

Population gradient flow of f(U) = 1/4 ||U U^T - M||_F^2 is dU/dt = (M - U U^T) U, so X = U U^T obeys the matrix
Riccati equation dX/dt = M X + X M - 2 X^2 with the exact solution (spec B.1)
    X(t) = e^{Mt} U0 [I + U0^T M^{-1}(e^{2Mt} - I) U0]^{-1} U0^T e^{Mt}.
Along one eigen-direction (aligned init) x = u^2 follows the logistic law dx/dt = 2x(s - x); ScaledGD(lambda)
(Xu, Shen, Ma & Chi 2023) in the flow limit gives dx/dt = 2x(s - x)/(x + lambda). Learning times of both are
closed forms below. Every closed form is checked in sympy (IDENTITIES) and exported as a jax.numpy function.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from .codegen import Identity

__all__ = [
    "IDENTITIES",
    "population_solution",
    "mode_solution",
    "mode_learning_time",
    "gd_flow_time",
    "scaled_flow_time",
    "best_rank_k",
    "plateau_levels",
    "small_init_exponent",
    "spectral_phase_error",
    "t_sym",
    "lam_sym",
    "x0_sym",
]

# ----------------------------------------------------------------------------------------------------------------
# sympy: symbols and closed forms
t_sym, lam_sym, x0_sym = sp.symbols("t lambda x_0", positive=True)
f_sym = sp.symbols("f", positive=True)
damp_sym = sp.symbols("lambda_d", positive=True)  # ScaledGD damping lambda
x1_sym = sp.symbols("x_1", positive=True)


# Small-init generalisation (claim 4; Stoger & Soltanolkotabi 2021 spectral phase): early GD is linear,
# U_k = (I + eta G0)^k U0 with G0 = A*A(M*) = (1/m) sum_i y_i A_i. A mode of G0 with eigenvalue g and initial energy
# c alpha^2 has energy c alpha^2 (1 + eta g)^{2k}. The signal mode (g_s, energy c_s alpha^2) saturates at lambda after
# k_T = ln(lambda/(c_s alpha^2)) / (2 ln(1 + eta g_s)) steps; a spurious mode (g_p) then holds energy
# c_p alpha^{2(1 - rho)} (lambda/c_s)^rho, rho = ln(1 + eta g_p)/ln(1 + eta g_s): final error ~ alpha^{2(1 - rho)}.
alpha_sym, eta_sym, gs_sym, gp_sym, cs_sym, cp_sym = sp.symbols("alpha eta g_s g_p c_s c_p", positive=True)
SMALL_INIT_RHO = sp.log(1 + eta_sym * gp_sym) / sp.log(1 + eta_sym * gs_sym)
SMALL_INIT_EXPONENT = 2 * (1 - SMALL_INIT_RHO)
SMALL_INIT_STEPS = sp.log(lam_sym / (cs_sym * alpha_sym**2)) / (2 * sp.log(1 + eta_sym * gs_sym))
SMALL_INIT_ENERGY = cp_sym * alpha_sym**SMALL_INIT_EXPONENT * (lam_sym / cs_sym) ** SMALL_INIT_RHO

def _g(lam, t):
    """sympy M^{-1}(e^{2Mt} - 1) for one eigenvalue."""
    return (sp.exp(2 * lam * t) - 1) / lam


# scalar Riccati / logistic solution x(t) for dx/dt = 2 lam x - 2 x^2, x(0) = x0
MODE_SOLUTION = x0_sym * sp.exp(2 * lam_sym * t_sym) / (1 + x0_sym * _g(lam_sym, t_sym))
# time for the mode to reach x = f * lam (0 < f < 1, x0 < f lam)
MODE_TIME = sp.log(f_sym * (lam_sym / x0_sym - 1) / (1 - f_sym)) / (2 * lam_sym)
# flow times from x0 to x1 (0 < x0 < x1 < s): gradient flow dx/dt = 2x(s-x) and ScaledGD(lambda) flow
# dx/dt = 2x(s-x)/(x+lambda_d) (u <- u - eta (u^2 - s) u / (u^2 + lambda_d), x = u^2, eta -> 0)
GD_FLOW_TIME = sp.log(x1_sym * (lam_sym - x0_sym) / (x0_sym * (lam_sym - x1_sym))) / (2 * lam_sym)
SCALED_FLOW_TIME = (damp_sym / (2 * lam_sym)) * sp.log(x1_sym / x0_sym) + ((lam_sym + damp_sym) / (2 * lam_sym)) * sp.log(
    (lam_sym - x0_sym) / (lam_sym - x1_sym)
)


def _riccati_residual_diag(U0: sp.Matrix, lams) -> sp.Matrix:
    """dX/dt - (M X + X M - 2 X^2) for the closed form with diagonal M = diag(lams) and symbolic U0.

    e^{lam_j t} is written as a symbol p_j with d/dt p_j = lam_j p_j. With X = N/D (N = V adj(K) V^T, D = det K)
    the residual times D^2 is the polynomial (dN/dt) D - N dD/dt - (M N + N M) D + 2 N^2, expanded exactly.
    """
    d, r = U0.shape
    ps = sp.symbols(f"p0:{d}", positive=True)
    M = sp.diag(*lams)
    E = sp.diag(*ps)
    G = sp.diag(*[(p**2 - 1) / l for p, l in zip(ps, lams)])
    K = sp.eye(r) + U0.T * G * U0
    V = E * U0
    N = (V * K.adjugate() * V.T).applyfunc(sp.expand)
    D = sp.expand(K.det())

    def ddt(expr):
        return sp.expand(sum(l * p * sp.diff(expr, p) for p, l in zip(ps, lams)))

    res = N.applyfunc(ddt) * D - N * ddt(D) - (M * N + N * M) * D + 2 * N * N
    return res.applyfunc(sp.expand)


def _id_scalar():
    x = MODE_SOLUTION
    return sp.diff(x, t_sym) - (2 * lam_sym * x - 2 * x**2)


def _id_diag_rank1():
    a, b = sp.symbols("a b", real=True)
    l1, l2 = sp.symbols("lambda_1 lambda_2", positive=True)
    return _riccati_residual_diag(sp.Matrix([[a], [b]]), (l1, l2))


def _id_diag_rank2():
    a, b, c, e = sp.symbols("a b c e", real=True)
    l1, l2 = sp.symbols("lambda_1 lambda_2", positive=True)
    return _riccati_residual_diag(sp.Matrix([[a, b], [c, e]]), (l1, l2))


def _id_zero_eigenvalue():
    return sp.limit(_g(lam_sym, t_sym), lam_sym, 0) - 2 * t_sym


def _id_semigroup():
    # x(t + s; x0) = x(t; x(s; x0)): the closed form is a flow, so it may be evaluated step by step (population_solution)
    s = sp.symbols("s", positive=True)
    x_s = MODE_SOLUTION.subs(t_sym, s)
    lhs = MODE_SOLUTION.subs(t_sym, t_sym + s)
    rhs = MODE_SOLUTION.subs(x0_sym, x_s)
    return sp.simplify(lhs - rhs)


def _id_mode_time():
    return sp.simplify(MODE_SOLUTION.subs(t_sym, MODE_TIME) - f_sym * lam_sym)


def _id_gd_flow_time():
    # dT/dx1 = 1 / (dx/dt) and T(x0) = 0
    return sp.Matrix(
        [
            sp.simplify(sp.diff(GD_FLOW_TIME, x1_sym) - 1 / (2 * x1_sym * (lam_sym - x1_sym))),
            GD_FLOW_TIME.subs(x1_sym, x0_sym),
        ]
    )


def _id_scaled_flow_time():
    return sp.Matrix(
        [
            sp.simplify(
                sp.diff(SCALED_FLOW_TIME, x1_sym) - (x1_sym + damp_sym) / (2 * x1_sym * (lam_sym - x1_sym))
            ),
            sp.simplify(SCALED_FLOW_TIME.subs(x1_sym, x0_sym)),
        ]
    )


def _id_scaledgd_scalar_map():
    # ScaledGD(lambda) on one aligned mode: u <- u - eta (u^2 - s) u / (u^2 + lambda); its flow limit for x = u^2
    u, eta = sp.symbols("u eta", positive=True)
    u_new = u - eta * (u**2 - lam_sym) * u / (u**2 + damp_sym)
    dx = sp.diff(sp.expand(u_new**2), eta).subs(eta, 0)
    return sp.simplify(dx - (2 * u**2 * (lam_sym - u**2) / (u**2 + damp_sym)))


def _gaussian_sym_matrix(d):
    """Symmetric A = (G + G^T)/2 written as sum_k xi_k B_k with xi_k iid N(0,1)."""
    basis = []
    for i in range(d):
        for j in range(i, d):
            B = sp.zeros(d, d)
            if i == j:
                B[i, i] = 1
            else:
                B[i, j] = B[j, i] = 1 / sp.sqrt(2)
            basis.append(B)
    return basis


def _id_isotropy():
    # E[<A, D> A] = D for symmetric D when A = (G + G^T)/2, G iid N(0,1): population loss is 1/4 ||UU^T - M||_F^2
    d = 3
    Ds = sp.symbols("D0:6", real=True)
    D = sp.Matrix([[Ds[0], Ds[1], Ds[2]], [Ds[1], Ds[3], Ds[4]], [Ds[2], Ds[4], Ds[5]]])
    basis = _gaussian_sym_matrix(d)
    # A = sum_k xi_k B_k with E[xi_k xi_l] = delta_kl, so E[<A, D> A] = sum_k <B_k, D> B_k
    expect = sp.zeros(d, d)
    for B in basis:
        expect += sum(B.multiply_elementwise(D)) * B
    return expect - D


def _id_sensing_gradient():
    # grad_U 1/4 (<A, U U^T> - y)^2 = (<A, U U^T> - y) A U for symmetric A
    a11, a12, a22, y = sp.symbols("a11 a12 a22 y", real=True)
    u1, u2, v1, v2 = sp.symbols("u1 u2 v1 v2", real=True)
    A = sp.Matrix([[a11, a12], [a12, a22]])
    U = sp.Matrix([[u1, v1], [u2, v2]])
    res = sum(A.multiply_elementwise(U * U.T)) - y
    f = res**2 / 4
    grad = sp.Matrix(2, 2, lambda i, j: sp.diff(f, U[i, j]))
    return sp.expand(grad - res * A * U)


def _id_small_init_saturation():
    # the signal mode reaches lambda after k_T steps
    return sp.simplify(sp.expand_log(sp.log(cs_sym * alpha_sym**2 * (1 + eta_sym * gs_sym) ** (2 * SMALL_INIT_STEPS))
                                     - sp.log(lam_sym), force=True))


def _id_small_init_energy():
    # energy of the spurious mode at k_T equals c_p alpha^{2(1-rho)} (lambda/c_s)^rho
    lhs = sp.log(cp_sym * alpha_sym**2 * (1 + eta_sym * gp_sym) ** (2 * SMALL_INIT_STEPS))
    return sp.simplify(sp.expand_log(lhs - sp.log(SMALL_INIT_ENERGY), force=True))


def _id_small_init_flow_limit():
    # eta -> 0: the exponent becomes 2 (1 - g_p/g_s) (gradient flow, spectral gap of A*A(M*))
    return sp.simplify(sp.limit(SMALL_INIT_EXPONENT, eta_sym, 0) - 2 * (1 - gp_sym / gs_sym))

IDENTITIES: list[Identity] = [
    Identity(
        "riccati_scalar",
        _id_scalar,
        "x(t) = x0 e^{2 lam t} / (1 + x0 (e^{2 lam t} - 1)/lam) solves dx/dt = 2 lam x - 2 x^2",
        "spec B.1",
    ),
    Identity(
        "riccati_diag_rank1",
        _id_diag_rank1,
        "closed-form X(t) solves dX/dt = MX + XM - 2X^2 for M = diag(l1, l2), U0 in R^{2x1}",
        "spec B.1",
    ),
    Identity(
        "riccati_diag_rank2",
        _id_diag_rank2,
        "closed-form X(t) solves dX/dt = MX + XM - 2X^2 for M = diag(l1, l2), general U0 in R^{2x2}",
        "spec B.1",
    ),
    Identity(
        "riccati_zero_eigenvalue",
        _id_zero_eigenvalue,
        "M^{-1}(e^{2Mt} - I) -> 2t on a zero eigenvalue",
        "spec B.1",
    ),
    Identity(
        "riccati_semigroup",
        _id_semigroup,
        "x(t+s; x0) = x(t; x(s; x0)): the closed form may be evaluated in steps",
        "spec B.1",
    ),
    Identity(
        "mode_learning_time",
        _id_mode_time,
        "x(t_f) = f lam at t_f = ln(f (lam/x0 - 1)/(1 - f)) / (2 lam) (time ~ ln(1/alpha)/lam for x0 ~ alpha^2)",
        "Jin et al. 2023",
    ),
    Identity(
        "gd_flow_time",
        _id_gd_flow_time,
        "T(x0 -> x1) = ln(x1 (s - x0) / (x0 (s - x1))) / (2 s) for dx/dt = 2x(s - x)",
        "spec B.3",
    ),
    Identity(
        "scaledgd_flow_time",
        _id_scaled_flow_time,
        "T(x0 -> x1) = (lam/2s) ln(x1/x0) + ((s+lam)/2s) ln((s-x0)/(s-x1)) for dx/dt = 2x(s-x)/(x+lam)",
        "Xu, Shen, Ma & Chi 2023",
    ),
    Identity(
        "scaledgd_scalar_flow_limit",
        _id_scaledgd_scalar_map,
        "ScaledGD(lam) on an aligned mode, u <- u - eta (u^2 - s) u/(u^2 + lam), has flow dx/dt = 2x(s-x)/(x+lam)",
        "Xu, Shen, Ma & Chi 2023",
    ),
    Identity(
        "sensing_isotropy",
        _id_isotropy,
        "E[<A, D> A] = D for A = (G + G^T)/2 (so the population loss is 1/4 ||UU^T - M||_F^2), d = 3",
        "spec B",
    ),
    Identity(
        "sensing_gradient",
        _id_sensing_gradient,
        "grad_U 1/4 (<A, UU^T> - y)^2 = (<A, UU^T> - y) A U for symmetric A (U in R^{2x2})",
        "spec B",
    ),
    Identity(
        "small_init_saturation_steps",
        _id_small_init_saturation,
        "c_s alpha^2 (1 + eta g_s)^{2 k_T} = lambda at k_T = ln(lambda/(c_s alpha^2)) / (2 ln(1 + eta g_s))",
        "Stoger & Soltanolkotabi 2021",
    ),
    Identity(
        "small_init_spurious_energy",
        _id_small_init_energy,
        "c_p alpha^2 (1 + eta g_p)^{2 k_T} = c_p alpha^{2(1-rho)} (lambda/c_s)^rho, rho = ln(1+eta g_p)/ln(1+eta g_s)",
        "Stoger & Soltanolkotabi 2021",
    ),
    Identity(
        "small_init_exponent_flow_limit",
        _id_small_init_flow_limit,
        "eta -> 0: error exponent 2(1 - rho) -> 2(1 - g_p/g_s)",
        "Stoger & Soltanolkotabi 2021",
    ),
]


# ----------------------------------------------------------------------------------------------------------------
# exported closed forms (jax.numpy, written from the checked sympy expressions above)


def _h(lam, t):
    """(1 - e^{-2 lam t}) / lam (-> 2t at lam = 0), stable for all real lam, t >= 0."""
    lam = jnp.asarray(lam)
    safe = jnp.where(lam == 0, 1.0, lam)
    small = jnp.abs(lam * t) < 1e-8
    return jnp.where(small, 2 * t * (1 - lam * t), -jnp.expm1(-2 * lam * t) / safe)


def mode_solution(t, lam, x0):
    """x(t) = x0 / (e^{-2 lam t} + x0 (1 - e^{-2 lam t})/lam), the solution of dx/dt = 2x(lam - x) (broadcasts).

    The Riccati flow along one eigen-direction of M (aligned init, x = u^2); spec B.1 / Saxe et al. 2014.
    """
    t, lam, x0 = jnp.asarray(t), jnp.asarray(lam), jnp.asarray(x0)
    return x0 / (jnp.exp(-2 * lam * t) + x0 * _h(lam, t))


def mode_learning_time(lam, x0, f=0.5):
    """t_f = ln(f (lam/x0 - 1)/(1 - f)) / (2 lam): time for dx/dt = 2x(lam - x) to reach f*lam (broadcasts).

    For x0 = c alpha^2 this is ln(1/alpha)/lam + ln(f(lam/c)/(1-f))/(2 lam) + O(alpha^2) (Jin et al. 2023).
    """
    lam, x0 = jnp.asarray(lam), jnp.asarray(x0)
    return jnp.log(f * (lam / x0 - 1) / (1 - f)) / (2 * lam)


def gd_flow_time(s, x0, x1):
    """T = ln(x1 (s - x0)/(x0 (s - x1)))/(2 s): gradient-flow time of one mode, dx/dt = 2x(s-x), from x0 to x1 < s."""
    s, x0, x1 = jnp.asarray(s), jnp.asarray(x0), jnp.asarray(x1)
    return jnp.log(x1 * (s - x0) / (x0 * (s - x1))) / (2 * s)


def scaled_flow_time(s, damping, x0, x1):
    """T = (lam/2s) ln(x1/x0) + ((s+lam)/2s) ln((s-x0)/(s-x1)): ScaledGD(lam) flow dx/dt = 2x(s-x)/(x+lam).

    Xu, Shen, Ma & Chi 2023, one aligned mode (x = u^2, eta -> 0); iterations ~ T/eta. Broadcasts.
    """
    s, lam, x0, x1 = (jnp.asarray(v) for v in (s, damping, x0, x1))
    return (lam / (2 * s)) * jnp.log(x1 / x0) + ((s + lam) / (2 * s)) * jnp.log((s - x0) / (s - x1))


def best_rank_k(M, k: int):
    """Best rank-k PSD approximation sum_{j<=k} max(lam_j, 0) v_j v_j^T of symmetric M (d, d) -> (d, d)."""
    M = _check_symmetric(M, "M")
    if not isinstance(k, (int, np.integer)) or k < 0:
        raise ValueError(f"k must be a non-negative int, got {k!r}")
    lam, Q = jnp.linalg.eigh(M)
    lam, Q = lam[::-1], Q[:, ::-1]
    keep = (jnp.arange(lam.shape[0]) < k) & (lam > 0)
    lam = jnp.where(keep, lam, 0.0)
    return (Q * lam) @ Q.T


def plateau_levels(M, r: int):
    """Plateau values of the eigenvalues of X: level k (k = 0..r) holds the top-k positive eigenvalues of M, zeros else.

    Returns (r + 1, r): row k are the top-r eigenvalues of the best rank-k approximation (Jin et al. 2023).
    """
    M = _check_symmetric(M, "M")
    lam = np.sort(np.linalg.eigvalsh(np.asarray(M)))[::-1]
    lam = np.clip(lam, 0, None)
    out = np.zeros((r + 1, r))
    for k in range(r + 1):
        kk = min(k, r, lam.size)
        out[k, :kk] = lam[:kk]
    return out


def _check_symmetric(M, name):
    if isinstance(M, jax.core.Tracer):
        return M
    arr = np.asarray(M)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1]:
        raise ValueError(f"{name} must be a square (d, d) matrix, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or inf")
    scale = max(1.0, float(np.max(np.abs(arr))))
    if not np.allclose(arr, arr.T, atol=1e-10 * scale, rtol=0):
        raise ValueError(f"{name} must be symmetric")
    return jnp.asarray(M)


def population_solution(t, M, U0, *, substeps: int | None = None):
    """X(t) = U U^T for dU/dt = (M - U U^T) U, i.e. X = e^{Mt}U0[I + U0^T M^{-1}(e^{2Mt}-I)U0]^{-1}U0^T e^{Mt} (spec B.1).

    Evaluated stably in M's eigenbasis: the exact flow map is applied in sub-intervals with |lam| dt <= 1, carrying
    a factor W (X = Q W W^T Q^T) through a Cholesky of the r x r kernel (the closed form is a semigroup, see the
    `riccati_semigroup` identity). t: () or (n,) non-decreasing times >= 0; M: (d, d) symmetric; U0: (d, r).
    Returns (d, d) or (n, d, d). `substeps` (per save interval) must be given under jit; else chosen from the data.
    """
    M = _check_symmetric(M, "M")
    traced = any(isinstance(v, jax.core.Tracer) for v in (t, U0)) or isinstance(M, jax.core.Tracer)
    if not isinstance(U0, jax.core.Tracer):
        u = np.asarray(U0)
        if u.ndim != 2 or u.shape[0] != np.shape(M)[0]:
            raise ValueError(f"U0 must have shape (d, r) with d = {np.shape(M)[0]}, got {u.shape}")
        if not np.all(np.isfinite(u)):
            raise ValueError("U0 contains NaN or inf")
    if not isinstance(t, jax.core.Tracer):
        tt = np.asarray(t, dtype=float)
        if tt.ndim > 1:
            raise ValueError(f"t must be a scalar or a 1-D array, got shape {tt.shape}")
        if not np.all(np.isfinite(tt)) or np.any(tt < 0):
            raise ValueError("t must be finite and >= 0")
        if tt.ndim == 1 and np.any(np.diff(tt) < 0):
            raise ValueError("t must be non-decreasing")
    if substeps is None:
        if traced:
            raise ValueError("substeps must be given when population_solution is traced (jit/vmap)")
        lam_max = float(np.max(np.abs(np.linalg.eigvalsh(np.asarray(M)))))
        tt = np.atleast_1d(np.asarray(t, dtype=float))
        dt_max = float(np.max(np.diff(np.concatenate([[0.0], tt]))))
        substeps = max(1, int(math.ceil(lam_max * dt_max)))
    if not isinstance(substeps, (int, np.integer)) or substeps < 1:
        raise ValueError(f"substeps must be a positive int, got {substeps!r}")

    scalar_t = jnp.ndim(t) == 0
    ts = jnp.atleast_1d(jnp.asarray(t, dtype=jnp.result_type(float)))
    lam, Q = jnp.linalg.eigh(jnp.asarray(M))
    W0 = Q.T @ jnp.asarray(U0)
    r = W0.shape[1]
    eye = jnp.eye(r, dtype=W0.dtype)

    def flow_map(W, dt):
        # exact map over dt in the eigenbasis: W -> e^{lam dt} W K^{-1/2}, K = I + W^T diag(e^{2 lam dt} h) W
        e = jnp.exp(lam * dt)
        g = e * e * _h(lam, dt)  # (e^{2 lam dt} - 1)/lam
        K = eye + W.T @ (g[:, None] * W)
        L = jnp.linalg.cholesky(K)
        V = e[:, None] * W
        return jax.scipy.linalg.solve_triangular(L, V.T, lower=True).T

    def save(carry, t_next):
        W, t_prev = carry
        dt = (t_next - t_prev) / substeps
        W = jax.lax.fori_loop(0, substeps, lambda i, w: flow_map(w, dt), W)
        return (W, t_next), Q @ (W @ W.T) @ Q.T

    _, Xs = jax.lax.scan(save, (W0, jnp.zeros((), ts.dtype)), ts)
    return Xs[0] if scalar_t else Xs


def small_init_exponent(g_signal, g_perp, eta):
    """p = 2(1 - ln(1 + eta g_p)/ln(1 + eta g_s)): final error ||UU^T - M*||_F ~ alpha^p of GD from init scale alpha.

    g_s: the r*-th eigenvalue of G0 = A*A(M*), g_p: the (r*+1)-th (spectral phase, Stoger & Soltanolkotabi 2021);
    p -> 2(1 - g_p/g_s) as eta -> 0, p = 2 for g_p = 0 (population). Broadcasts.
    """
    _check_growth(g_signal, g_perp, eta)
    g_signal, g_perp, eta = jnp.asarray(g_signal), jnp.asarray(g_perp), jnp.asarray(eta)
    return 2.0 * (1.0 - jnp.log1p(eta * g_perp) / jnp.log1p(eta * g_signal))


def _check_growth(g_signal, g_perp, eta):
    """ValueError unless eta > 0, g_signal > 0 and 1 + eta g_perp > 0 (concrete inputs only)."""
    vals = {"eta": eta, "g_signal": g_signal, "g_perp": g_perp}
    if any(isinstance(v, jax.core.Tracer) for v in vals.values()):
        return
    e, gs, gp = (np.asarray(v, dtype=float) for v in (eta, g_signal, g_perp))
    for name, a in (("eta", e), ("g_signal", gs), ("g_perp", gp)):
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name} must be finite")
    if np.any(e <= 0):
        raise ValueError(f"eta must be positive, got {eta!r}")
    if np.any(gs <= 0):
        raise ValueError(f"g_signal must be positive (the signal mode must grow), got {g_signal!r}")
    if np.any(1 + e * gp <= 0):
        raise ValueError("g_perp must satisfy 1 + eta g_perp > 0")


def spectral_phase_error(alpha, c_perp, g_perp, c_signal, g_signal, lam, eta):
    """sum_j c_j alpha^{p_j} (lam/c_s)^{rho_j}: energy left in the spurious modes when the signal saturates.

    alpha (n,), c_perp/g_perp (k,) initial energies (per alpha^2) and G0 eigenvalues of the spurious modes, c_signal,
    g_signal of the last signal mode, lam its target eigenvalue; -> (n,). Linear spectral phase of GD (Stoger &
    Soltanolkotabi 2021); proportional to the final error up to mode-dependent O(1) gains.
    """
    _check_growth(g_signal, g_perp, eta)
    if not isinstance(alpha, jax.core.Tracer) and (np.ndim(alpha) != 1 or np.any(np.asarray(alpha) <= 0)):
        raise ValueError("alpha must be a 1-D array of positive init scales")
    if np.ndim(c_perp) != 1 or np.shape(c_perp) != np.shape(g_perp):
        raise ValueError(f"c_perp and g_perp must be 1-D of equal length, got {np.shape(c_perp)}, {np.shape(g_perp)}")
    alpha = jnp.asarray(alpha, dtype=float)[:, None]
    c_perp, g_perp = jnp.asarray(c_perp, dtype=float)[None, :], jnp.asarray(g_perp, dtype=float)[None, :]
    rho = jnp.log1p(eta * g_perp) / jnp.log1p(eta * g_signal)
    return jnp.sum(c_perp * alpha ** (2.0 * (1.0 - rho)) * (lam / c_signal) ** rho, axis=1)
