"""Deep linear networks: closed forms of gradient-flow learning dynamics, checked in sympy.

Setting (spec A): whitened inputs, Sigma_yx = U S V^T, two-layer net W = W2 W1 (W1: h x n_in, W2: n_out x h),
loss L = 1/2 ||Sigma_yx - W2 W1||_F^2, gradient flow tau dW1/dt = W2^T E, tau dW2/dt = E W1^T with E = Sigma_yx - W2 W1.

Notebook API (all plain jax.numpy functions of arrays, jit/vmap safe unless stated):
- ``saxe_mode(t, s, u0, tau=1.0)``: Saxe et al. 2014 mode strength u(t) = s / (1 + (s/u0 - 1) e^{-2 s t / tau}),
  the solution of tau u' = 2 u (s - u) (balanced aligned init; u = product of the two layers' singular values).
- ``learning_time(s, u0, tau=1.0, frac=0.5)``: t_f = tau/(2s) ln(f (s/u0 - 1)/(1 - f)), time to reach u = f s.
- ``depth_mode_time(u, s, u0, depth, tau)`` / ``depth_mode(t, s, u0, depth, tau)``: depth-N balanced mode,
  tau u' = N u^{2-2/N} (s - u); exact implicit solution t(u) (closed form for N = 2, 3, 4) and its inverse.
- ``two_layer_solution(t, W1_0, W2_0, sigma_yx, tau=1.0)``: exact product W2 W1 (t) from an arbitrary
  (non-aligned) initialisation with imbalance C = W1 W1^T - W2^T W2 = lam I (lam = 0: balanced, Braun et al.
  2022; lam != 0: unbalanced, Tarmoun et al. 2021 / Domine et al. 2024). Z = [W1^T; W2] obeys
  tau Z' = Gamma Z - 1/2 Z Z^T Z + 1/2 J Z C, so X = Z Z^T solves the Riccati equation
  tau X' = A X + X A - X^2, A = Gamma + (lam/2) J, X(t) = e^{At} Z0 [I + 1/2 Z0^T A^{-1}(e^{2At} - I) Z0]^{-1} Z0^T e^{At}.
  ``two_layer_gram`` returns X(t).
- ``tarmoun_rate(s, lam, tau=1.0)``: asymptotic decay rate sqrt(4 s^2 + lam^2)/tau of the error in mode s.
- ``gd_imbalance_change(W1, W2, sigma_yx, lr)``: exact one-step GD change of C: lr^2 (W2^T E E^T W2 - W1 E^T E W1^T).
- ``arora_field(W, sigma_yx, depth, tau=1.0)``: Arora, Cohen & Hazan 2018 end-to-end flow of the product of a
  balanced depth-N network, tau W' = sum_j (W W^T)^{(N-j)/N} E (W^T W)^{(j-1)/N}.
- ``width_one_solution(t, p0, s, tau=1.0)``: width-one hidden layer from a balanced start with W1^T = V p,
  W2 = U p (Chen, Lin & Zhang 2022 setting): u_a(t) = p_a^2 e^{2 s_a t} / (1 + sum_b p_b^2 (e^{2 s_b t} - 1)/s_b).
- ``width_one_deep_solution(t, a0, b0, sigma0, s, depth)``, ``width_one_direction``, ``width_one_null_decay``
  (module `derivations.width_one`): any depth, any balanced start W = sigma0 a0 b0^T with a width-one layer.

`IDENTITIES` lists the symbolic facts behind all of these; `check_identities(IDENTITIES, "deep_linear")` checks them.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from ._checks import check_depth, concrete

from .codegen import Identity, to_jax
from . import width_one as _width_one_module
from .width_one import width_one_deep_solution, width_one_direction, width_one_null_decay

__all__ = [
    "saxe_mode",
    "learning_time",
    "depth_mode_time",
    "depth_mode",
    "two_layer_gram",
    "two_layer_solution",
    "tarmoun_rate",
    "gd_imbalance_change",
    "arora_field",
    "width_one_solution",
    "width_one_direction",
    "width_one_deep_solution",
    "width_one_null_decay",
    "IDENTITIES",
]

# --------------------------------------------------------------------------------------------------------------
# input checks (only on concrete values; traced values pass through untouched)


_concrete = concrete


def _check_positive(name, x, allow_zero=False):
    a = _concrete(x)
    if a is None:
        return
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite, got {x!r}")
    if np.any(a < 0) or (not allow_zero and np.any(a == 0)):
        raise ValueError(f"{name} must be {'non-negative' if allow_zero else 'positive'}, got {x!r}")


# --------------------------------------------------------------------------------------------------------------
# Saxe et al. 2014: two-layer mode strength

t_, s_, u0_, tau_, f_ = sp.symbols("t s u_0 tau f", positive=True)
SAXE_MODE = s_ * sp.exp(2 * s_ * t_ / tau_) / (sp.exp(2 * s_ * t_ / tau_) - 1 + s_ / u0_)
LEARNING_TIME = tau_ / (2 * s_) * sp.log(f_ * (s_ / u0_ - 1) / (1 - f_))


def saxe_mode(t, s, u0, tau=1.0):
    """Saxe et al. 2014 mode strength u(t) = s e^{2st/tau} / (e^{2st/tau} - 1 + s/u0), solving tau u' = 2u(s-u).

    Broadcasts over t, s, u0, tau; evaluated as s / (1 + (s/u0 - 1) e^{-2st/tau}) (no overflow for large t).
    """
    _check_positive("s", s)
    _check_positive("u0", u0)
    _check_positive("tau", tau)
    t, s, u0, tau = (jnp.asarray(x, dtype=float) for x in (t, s, u0, tau))
    return s / (1.0 + (s / u0 - 1.0) * jnp.exp(-2.0 * s * t / tau))


def learning_time(s, u0, tau=1.0, frac=0.5):
    """Time for a Saxe mode to reach u = frac*s: t_f = tau/(2s) ln(frac (s/u0 - 1)/(1 - frac)) (Saxe et al. 2014).

    Needs 0 < u0 < frac*s < s; for frac = 1/2 and u0 << s this is (tau/(2s)) ln(s/u0).
    """
    _check_positive("s", s)
    _check_positive("u0", u0)
    _check_positive("tau", tau)
    fr = _concrete(frac)
    if fr is not None and not np.all((fr > 0) & (fr < 1)):
        raise ValueError(f"frac must lie in (0, 1), got {frac!r}")
    ss, uu = _concrete(s), _concrete(u0)
    if ss is not None and uu is not None and fr is not None and np.any(uu >= fr * ss):
        raise ValueError("u0 must be smaller than frac*s (the mode starts below the level whose time is asked)")
    s, u0, tau, frac = (jnp.asarray(x, dtype=float) for x in (s, u0, tau, frac))
    return tau / (2.0 * s) * jnp.log(frac * (s / u0 - 1.0) / (1.0 - frac))


# --------------------------------------------------------------------------------------------------------------
# depth-N balanced aligned modes: tau u' = N u^{2-2/N}(s - u); t(u) = tau * int_{w0}^{w} dw / (w^{N-1}(s - w^N)),
# u = w^N, c = s^{1/N}. Antiderivatives F_N(w; c) (sympy `integrate`, logs rewritten for w < c, checked below).

w_, c_, a_ = sp.symbols("w c a", positive=True)
DEPTH_ANTIDERIVATIVE = {
    2: (sp.log(w_) - sp.log(c_ - w_) / 2 - sp.log(c_ + w_) / 2) / c_**2,
    3: -1 / (c_**3 * w_)
    - sp.log(c_ - w_) / (3 * c_**4)
    + sp.log(c_**2 + c_ * w_ + w_**2) / (6 * c_**4)
    - sp.sqrt(3) * sp.atan((2 * w_ + c_) / (sp.sqrt(3) * c_)) / (3 * c_**4),
    4: -1 / (2 * c_**4 * w_**2) - sp.log(c_**2 - w_**2) / (4 * c_**6) + sp.log(c_**2 + w_**2) / (4 * c_**6),
}


@functools.lru_cache(maxsize=None)
def _antiderivative_fn(depth):
    return to_jax(DEPTH_ANTIDERIVATIVE[depth], [w_, c_])


def _check_depth_mode(depth, s, u0, tau):
    """Arguments of the depth-N closed forms: depth in (2, 3, 4), s, u0, tau positive; returns depth as an int."""
    depth = check_depth(depth)
    if depth not in DEPTH_ANTIDERIVATIVE:
        raise ValueError(f"closed form available for depth 2, 3, 4; got {depth}")
    _check_positive("s", s)
    _check_positive("u0", u0)
    _check_positive("tau", tau)
    return depth


def depth_mode_time(u, s, u0, depth, tau=1.0):
    """Exact time at which a depth-N balanced mode (tau u' = N u^{2-2/N}(s - u), Saxe 2014 / Arora 2018) reaches u.

    t(u) = tau [F_N(u^{1/N}) - F_N(u0^{1/N})] with the closed-form antiderivatives F_N (N = 2, 3, 4); needs u0, u < s.
    """
    depth = _check_depth_mode(depth, s, u0, tau)
    F = _antiderivative_fn(depth)
    u, s, u0, tau = (jnp.asarray(x, dtype=float) for x in (u, s, u0, tau))
    c = s ** (1.0 / depth)
    return tau * (F(u ** (1.0 / depth), c) - F(u0 ** (1.0 / depth), c))


def depth_mode(t, s, u0, depth, tau=1.0, iterations=200):
    """Depth-N balanced mode strength u(t), inverting the exact t(u) of `depth_mode_time` by bisection (jit-safe).

    Bisection on w = u^{1/N} in [w0, s^{1/N}) (u0 < s); `iterations` halvings (200 reaches float64 resolution).
    """
    depth = _check_depth_mode(depth, s, u0, tau)
    t, s, u0, tau = jnp.broadcast_arrays(*(jnp.asarray(x, dtype=float) for x in (t, s, u0, tau)))
    return _depth_mode_bisect(t, s, u0, tau, depth, int(iterations))


@functools.partial(jax.jit, static_argnums=(4, 5))
def _depth_mode_bisect(t, s, u0, tau, depth, iterations):
    F = _antiderivative_fn(depth)
    c = s ** (1.0 / depth)
    w0 = u0 ** (1.0 / depth)
    F0 = F(w0, c)

    def body(_, bounds):
        lo, hi = bounds
        mid = 0.5 * (lo + hi)
        late = tau * (F(mid, c) - F0) < t
        return jnp.where(late, mid, lo), jnp.where(late, hi, mid)

    lo, hi = jax.lax.fori_loop(0, iterations, body, (w0, c))
    return (0.5 * (lo + hi)) ** depth


# --------------------------------------------------------------------------------------------------------------
# Riccati solution from arbitrary initialisation with imbalance C = lam I (two layers)


def _riccati_matrices(sigma_yx, lam):
    n_out, n_in = sigma_yx.shape
    n = n_in + n_out
    gamma = jnp.zeros((n, n)).at[:n_in, n_in:].set(sigma_yx.T).at[n_in:, :n_in].set(sigma_yx)
    J = jnp.concatenate([jnp.ones(n_in), -jnp.ones(n_out)])
    return gamma + 0.5 * lam * jnp.diag(J)


def _check_two_layer(W1_0, W2_0, sigma_yx, rtol=1e-6):
    shapes = [getattr(x, "shape", np.shape(x)) for x in (W1_0, W2_0, sigma_yx)]
    if any(len(sh) != 2 for sh in shapes):
        raise ValueError(f"W1_0, W2_0, sigma_yx must be matrices, got shapes {shapes}")
    (h, n_in), (n_out, h2), (n_out2, n_in2) = shapes
    if h != h2 or n_out != n_out2 or n_in != n_in2:
        raise ValueError(f"shapes do not chain: W1_0 {shapes[0]}, W2_0 {shapes[1]}, sigma_yx {shapes[2]}")
    W1, W2 = _concrete(W1_0), _concrete(W2_0)
    if W1 is None or W2 is None:
        return
    if not (np.all(np.isfinite(W1)) and np.all(np.isfinite(W2))):
        raise ValueError("W1_0 and W2_0 must be finite")
    C = W1 @ W1.T - W2.T @ W2
    lam = np.trace(C) / h
    scale = max(np.abs(W1).max() ** 2, np.abs(W2).max() ** 2, 1e-300)
    if np.abs(C - lam * np.eye(h)).max() > rtol * scale * h:
        raise ValueError(
            "the exact solution needs imbalance W1 W1^T - W2^T W2 = lam I (lam-balanced init); "
            f"got deviation {np.abs(C - lam * np.eye(h)).max():.3g} from lam I"
        )


def _riccati_step(Z, mu, P, dt):
    """Exact flow map of tau X' = AX + XA - X^2 on a factor Z (X = Z Z^T) over time dt, A = P diag(mu) P^T."""
    B = P.T @ Z
    small = jnp.abs(mu * dt) < 1e-8
    mu_safe = jnp.where(small, 1.0, mu)
    g = jnp.where(small, 2 * dt * (1 + mu * dt), jnp.expm1(2 * mu_safe * dt) / mu_safe)  # (e^{2 mu dt}-1)/mu
    K = jnp.eye(Z.shape[1]) + 0.5 * (B.T * g) @ B
    L = jnp.linalg.cholesky(K)
    Y = P @ (jnp.exp(mu * dt)[:, None] * B)
    # Z_new = Y L^{-T}, so Z_new Z_new^T = Y K^{-1} Y^T
    return jax.scipy.linalg.solve_triangular(L, Y.T, lower=True).T


def two_layer_gram(t, W1_0, W2_0, sigma_yx, tau=1.0, substeps=8):
    """X(t) = Z Z^T, Z = [W1^T; W2], exact for imbalance C = lam I (Tarmoun et al. 2021; Braun et al. 2022 at lam=0).

    tau X' = AX + XA - X^2, A = Gamma + lam/2 diag(I_in, -I_out): X(t) = e^{At}Z0 [I + 1/2 Z0^T A^{-1}(e^{2At}-I) Z0]^{-1}
    Z0^T e^{At}, evaluated in A's eigenbasis and chained over the save times t (n_t,), `substeps` pieces per
    interval (the flow map composes exactly; chaining only keeps each factor well conditioned). Returns (n_t, n, n).
    """
    _check_two_layer(W1_0, W2_0, sigma_yx)
    _check_positive("tau", tau)
    tc = _concrete(t)
    if tc is not None and (tc.ndim != 1 or np.any(np.diff(tc) < 0) or np.any(tc < 0)):
        raise ValueError("t must be a 1-D non-decreasing array of non-negative times")
    W1_0, W2_0, sigma_yx = (jnp.asarray(x, dtype=float) for x in (W1_0, W2_0, sigma_yx))
    h = W1_0.shape[0]
    lam = jnp.trace(W1_0 @ W1_0.T - W2_0.T @ W2_0) / h
    mu, P = jnp.linalg.eigh(_riccati_matrices(sigma_yx, lam))
    Z0 = jnp.concatenate([W1_0.T, W2_0], axis=0)
    t = jnp.asarray(t, dtype=float) / tau
    dts = jnp.diff(t, prepend=0.0) / substeps

    def interval(Z, dt):
        Z = jax.lax.fori_loop(0, substeps, lambda _, Z: _riccati_step(Z, mu, P, dt), Z)
        return Z, Z @ Z.T

    _, X = jax.lax.scan(interval, Z0, dts)
    return X


def two_layer_solution(t, W1_0, W2_0, sigma_yx, tau=1.0, substeps=8):
    """Exact product W2 W1 (t) of two-layer gradient flow from a lam-balanced, non-aligned init (Tarmoun et al. 2021).

    The lower-left (n_out x n_in) block of `two_layer_gram`; shape (n_t, n_out, n_in).
    """
    X = two_layer_gram(t, W1_0, W2_0, sigma_yx, tau, substeps)
    n_in = jnp.shape(W1_0)[1]
    return X[:, n_in:, :n_in]


def tarmoun_rate(s, lam, tau=1.0):
    """Asymptotic rate of E = Sigma - W2 W1 in a mode of singular value s with imbalance C = lam I: sqrt(4s^2+lam^2)/tau.

    Near the minimum tau E' = -(E W1^T W1 + W2 W2^T E); per mode W1^T W1 -> a^2, W2 W2^T -> b^2 with ab = s,
    a^2 - b^2 = lam, so a^2 + b^2 = sqrt(4 s^2 + lam^2) (Tarmoun et al. 2021: imbalance accelerates convergence).
    """
    _check_positive("s", s)
    _check_positive("tau", tau)
    s, lam, tau = (jnp.asarray(x, dtype=float) for x in (s, lam, tau))
    return jnp.sqrt(4 * s**2 + lam**2) / tau


# --------------------------------------------------------------------------------------------------------------
# discrete GD: exact one-step change of the imbalance


def gd_imbalance_change(W1, W2, sigma_yx, lr):
    """Exact change of C = W1 W1^T - W2^T W2 after one GD step of size lr on L = 1/2||Sigma - W2 W1||^2.

    C_new - C = lr^2 (W2^T E E^T W2 - W1 E^T E W1^T), E = Sigma - W2 W1: the O(lr) term cancels. Shape (h, h).
    """
    _check_positive("lr", lr)
    _check_two_layer_shapes(W1, W2, sigma_yx)
    E = sigma_yx - W2 @ W1
    return lr**2 * (W2.T @ E @ E.T @ W2 - W1 @ E.T @ E @ W1.T)


def _check_two_layer_shapes(W1, W2, sigma_yx):
    shapes = [jnp.shape(x) for x in (W1, W2, sigma_yx)]
    if any(len(sh) != 2 for sh in shapes) or shapes[0][0] != shapes[1][1] or shapes[2] != (
        shapes[1][0],
        shapes[0][1],
    ):
        raise ValueError(f"W1 (h, n_in), W2 (n_out, h), sigma_yx (n_out, n_in) do not chain: {shapes}")


# --------------------------------------------------------------------------------------------------------------
# Arora, Cohen & Hazan 2018: end-to-end dynamics of a balanced depth-N network


def _psd_power(M, p):
    ev, Q = jnp.linalg.eigh(0.5 * (M + M.T))
    return (Q * jnp.clip(ev, 0.0, None) ** p) @ Q.T


def arora_field(W, sigma_yx, depth, tau=1.0):
    """Arora et al. 2018 end-to-end flow of a balanced depth-N product: tau W' = sum_j (WW^T)^{(N-j)/N} E (W^TW)^{(j-1)/N}.

    E = Sigma_yx - W (= -grad L); W, sigma_yx: (n_out, n_in). Fractional powers through eigh (PSD part).
    """
    depth = check_depth(depth)
    if jnp.shape(W) != jnp.shape(sigma_yx):
        raise ValueError(f"W and sigma_yx must have the same shape, got {jnp.shape(W)} and {jnp.shape(sigma_yx)}")
    E = sigma_yx - W
    WWt, WtW = W @ W.T, W.T @ W
    out = jnp.zeros_like(W)
    for j in range(1, depth + 1):
        out = out + _psd_power(WWt, (depth - j) / depth) @ E @ _psd_power(WtW, (j - 1) / depth)
    return out / tau


# --------------------------------------------------------------------------------------------------------------
# width-one hidden layer (rank-one product), balanced start W1^T = V p, W2 = U p


def width_one_solution(t, p0, s, tau=1.0):
    """Mode strengths u_a(t) = p_a^2(t) of a width-one two-layer net from W1^T = V p0, W2 = U p0 (balanced).

    p_a' = p_a (s_a - |p|^2)/tau gives u_a(t) = p0_a^2 e^{2 s_a t'} / (1 + sum_b p0_b^2 (e^{2 s_b t'} - 1)/s_b),
    t' = t/tau: the rank-one Riccati solution (Chen, Lin & Zhang 2022 setting). t: (n_t,), p0, s: (r,) -> (n_t, r).
    """
    _check_positive("s", s)
    _check_positive("tau", tau)
    t = jnp.asarray(t, dtype=float)[:, None] / tau
    p0, s = jnp.asarray(p0, dtype=float), jnp.asarray(s, dtype=float)
    # divide numerator and denominator by e^{2 s_a t} (columns a), rows t
    diff = 2 * (s[None, None, :] - s[None, :, None]) * t[:, :, None]  # [t, a, b]: 2 (s_b - s_a) t
    denom = jnp.exp(-2 * s[None, :] * t) + jnp.sum(
        p0**2 / s * (jnp.exp(diff) - jnp.exp(-2 * s[None, :, None] * t[:, :, None])), axis=-1
    )
    return p0**2 / denom


# --------------------------------------------------------------------------------------------------------------
# identities


def _mat(name, rows, cols):
    return sp.Matrix(rows, cols, lambda i, j: sp.Symbol(f"{name}{i}{j}", real=True))


def _saxe_ode():
    u = SAXE_MODE
    return tau_ * sp.diff(u, t_) - 2 * u * (s_ - u)


def _saxe_init():
    return SAXE_MODE.subs(t_, 0) - u0_


def _learning_time():
    return sp.simplify(SAXE_MODE.subs(t_, LEARNING_TIME)) - f_ * s_


def _two_layer_flow(W1, W2, S):
    E = S - W2 * W1
    return W2.T * E, E * W1.T  # tau dW1/dt, tau dW2/dt


def _conservation():
    W1, W2, S = _mat("a", 2, 2), _mat("b", 2, 2), _mat("s", 2, 2)
    d1, d2 = _two_layer_flow(W1, W2, S)
    return (d1 * W1.T + W1 * d1.T) - (d2.T * W2 + W2.T * d2)


def _conservation_rect():
    W1, W2, S = _mat("a", 2, 3), _mat("b", 3, 2), _mat("s", 3, 3)
    d1, d2 = _two_layer_flow(W1, W2, S)
    return ((d1 * W1.T + W1 * d1.T) - (d2.T * W2 + W2.T * d2)).applyfunc(sp.expand)


def _gd_drift():
    W1, W2, S = _mat("a", 2, 2), _mat("b", 2, 2), _mat("s", 2, 2)
    eta = sp.Symbol("eta", positive=True)
    d1, d2 = _two_layer_flow(W1, W2, S)  # = -grad
    N1, N2 = W1 + eta * d1, W2 + eta * d2
    E = S - W2 * W1
    change = (N1 * N1.T - N2.T * N2) - (W1 * W1.T - W2.T * W2)
    return (change - eta**2 * (W2.T * E * E.T * W2 - W1 * E.T * E * W1.T)).applyfunc(sp.expand)


def _depth_mode_ode(N):
    def build():
        # balanced aligned scalar chain: a_j = a for all j; loss 1/2 (s - prod a_j)^2
        aa = sp.symbols(f"a1:{N + 1}", positive=True)
        loss = (s_ - sp.Mul(*aa)) ** 2 / 2
        adot = -sp.diff(loss, aa[0]).subs({x: a_ for x in aa})  # tau a' for every layer (same by symmetry)
        u = a_**N
        udot = sp.diff(u, a_) * adot  # tau u'
        return sp.simplify(udot - N * u ** (2 - sp.Rational(2, N)) * (s_ - u))

    return build


def _depth_time(N):
    def build():
        F = DEPTH_ANTIDERIVATIVE[N]
        # t(u) = tau F(u^{1/N}) + const: dt/dw = tau/(w^{N-1}(c^N - w^N)) <=> dt/du = tau/(N u^{2-2/N}(s-u))
        return sp.simplify(sp.diff(F, w_) - 1 / (w_ ** (N - 1) * (c_**N - w_**N)))

    return build


def _depth_time_chain(N):
    def build():
        # chain rule u = w^N: dt/du = dt/dw * dw/du with dt/dw = tau F_N'(w) must equal tau/(N u^{2-2/N}(s-u))
        u = sp.Symbol("u", positive=True)
        dtdw = sp.diff(DEPTH_ANTIDERIVATIVE[N], w_)
        dtdu = dtdw.subs({w_: u ** sp.Rational(1, N), c_: s_ ** sp.Rational(1, N)}) * sp.diff(u ** sp.Rational(1, N), u)
        return sp.simplify(dtdu - 1 / (N * u ** (2 - sp.Rational(2, N)) * (s_ - u)))

    return build


def _riccati_z_equation():
    # tau Z' = Gamma Z - 1/2 Z Z^T Z + 1/2 J Z C, C = Z^T J Z = W1 W1^T - W2^T W2, for any init (n_in=2, h=2, n_out=2)
    W1, W2, S = _mat("a", 2, 2), _mat("b", 2, 2), _mat("s", 2, 2)
    d1, d2 = _two_layer_flow(W1, W2, S)
    Z = W1.T.col_join(W2)
    Zdot = d1.T.col_join(d2)
    G = sp.zeros(4, 4)
    G[:2, 2:] = S.T
    G[2:, :2] = S
    J = sp.diag(1, 1, -1, -1)
    C = Z.T * J * Z
    return (Zdot - (G * Z - Z * Z.T * Z / 2 + J * Z * C / 2)).applyfunc(sp.expand)


def _riccati_lambda_balanced():
    # with C = lam I the Z-equation gives tau X' = A X + X A - X^2 for X = Z Z^T, A = Gamma + lam/2 J (Z: 4 x 2)
    lam = sp.Symbol("lam", real=True)
    Z, S = _mat("z", 4, 2), _mat("s", 2, 2)
    G = sp.zeros(4, 4)
    G[:2, 2:] = S.T
    G[2:, :2] = S
    J = sp.diag(1, 1, -1, -1)
    Zdot = G * Z - Z * Z.T * Z / 2 + J * Z * (lam * sp.eye(2)) / 2
    X, A = Z * Z.T, G + lam * J / 2
    return (Zdot * Z.T + Z * Zdot.T - (A * X + X * A - X * X)).applyfunc(sp.expand)


def _riccati_solution(h):
    def build():
        # X(t) = Y K^{-1} Y^T, Y = e^{At} Z0, K = I + 1/2 Z0^T A^{-1}(e^{2At} - I) Z0 solves X' = AX + XA - X^2
        # (A symmetric, checked in its eigenbasis A = diag(m1, m2), Z0 symbolic 2 x h). e_i = e^{m_i t} are symbols
        # with d e_i/dt = m_i e_i; K^{-1} = adj(K)/det(K), so the residual times det(K)^2 is a polynomial.
        m = sp.symbols("m1 m2", nonzero=True, real=True)
        e = sp.symbols("e1 e2", positive=True)
        Z0 = _mat("z", 2, h)

        def ddt(expr):
            return sum(sp.diff(expr, ei) * mi * ei for ei, mi in zip(e, m))

        Y = sp.diag(*e) * Z0
        K = sp.eye(h) + Z0.T * sp.diag(*[(ei**2 - 1) / mi for ei, mi in zip(e, m)]) * Z0 / 2
        detK, adjK = K.det(), K.adjugate()
        Xn = Y * adjK * Y.T  # X = Xn / detK
        A = sp.diag(*m)
        # (Xn/d)' = (Xn' d - Xn d')/d^2 ; residual * d^2:
        res = Xn.applyfunc(ddt) * detK - Xn * ddt(detK) - (A * Xn + Xn * A) * detK + Xn * Xn
        return res.applyfunc(lambda x: sp.expand(sp.numer(sp.together(sp.expand(x)))))

    return build


def _rate_identity():
    # one aligned mode at the minimum: a b = s, a^2 - b^2 = lam  =>  (a^2 + b^2)^2 = lam^2 + 4 s^2, and the error
    # e = s - ab obeys tau e' = -(a^2 + b^2) e to first order (tau (ab)' = a^2 e + b^2 e)
    a, b, e = sp.symbols("a b e", positive=True)
    rate_sq = sp.expand((a**2 + b**2) ** 2 - ((a**2 - b**2) ** 2 + 4 * (a * b) ** 2))
    W1, W2 = sp.Matrix([[a]]), sp.Matrix([[b]])
    d1, d2 = _two_layer_flow(W1, W2, sp.Matrix([[a * b + e]]))
    prod_dot = (d2 * W1 + W2 * d1)[0, 0]
    return sp.Matrix([rate_sq, sp.expand(prod_dot - (a**2 + b**2) * e)])


def _arora_balanced_n3():
    # balanced N=3 chain W1 = R1 D, W2 = R2 D R1^T, W3 = D R2^T (input/output rotations absorbed into Sigma).
    # The layer-wise flow gives W' = sum_j L_j L_j^T E R_j^T R_j with L_j = W_N..W_{j+1}, R_j = W_{j-1}..W_1, so the
    # end-to-end form sum_j (WW^T)^{(N-j)/N} E (W^TW)^{(j-1)/N} holds iff L_j L_j^T = D^{2(N-j)} = (WW^T)^{(N-j)/N}
    # and R_j^T R_j = D^{2(j-1)} = (W^TW)^{(j-1)/N} with W = D^3: these are the residuals below.
    th1, th2 = sp.symbols("theta1 theta2", real=True)
    d1, d2 = sp.symbols("d1 d2", positive=True)

    def rot(x):
        return sp.Matrix([[sp.cos(x), -sp.sin(x)], [sp.sin(x), sp.cos(x)]])

    R1, R2 = rot(th1), rot(th2)
    D = sp.diag(d1, d2)
    Ws = [R1 * D, R2 * D * R1.T, D * R2.T]
    N = 3

    def prod(mats):
        out = sp.eye(2)
        for M in mats:
            out = M * out
        return out

    blocks = [prod(Ws) - D**N]
    for j in range(1, N + 1):
        left, right = prod(Ws[j:]), prod(Ws[: j - 1])
        blocks.append(left * left.T - D ** (2 * (N - j)))
        blocks.append(right.T * right - D ** (2 * (j - 1)))
    return sp.Matrix.vstack(*blocks).applyfunc(lambda x: sp.trigsimp(sp.expand(x)))


def _width_one():
    # u_a = p_a^2 with p_a' = p_a (s_a - sum_b p_b^2) (two modes)
    s1, s2, p1, p2 = sp.symbols("s1 s2 p1 p2", positive=True)
    den = 1 + p1**2 * (sp.exp(2 * s1 * t_) - 1) / s1 + p2**2 * (sp.exp(2 * s2 * t_) - 1) / s2
    P1 = p1 * sp.exp(s1 * t_) / sp.sqrt(den)
    P2 = p2 * sp.exp(s2 * t_) / sp.sqrt(den)
    r = P1**2 + P2**2
    return sp.Matrix([sp.diff(P1, t_) - P1 * (s1 - r), sp.diff(P2, t_) - P2 * (s2 - r), P1.subs(t_, 0) - p1])


def _width_one_flow():
    # with W1 = p^T V^T, W2 = U p (h = 1) the two-layer flow keeps W1^T coordinates = W2 coordinates and
    # gives p' = (S - p p^T... ) : check tau dW1/dt = W2^T E maps to p' = p (s_a - |p|^2) for a diagonal S
    p = sp.Matrix(sp.symbols("p1 p2", real=True))
    s1, s2 = sp.symbols("s1 s2", positive=True)
    S = sp.diag(s1, s2)
    W1, W2 = p.T, p
    d1, d2 = _two_layer_flow(W1, W2, S)
    target = sp.Matrix([p[0] * (s1 - p.dot(p)), p[1] * (s2 - p.dot(p))])
    return sp.Matrix.vstack((d1.T - target).applyfunc(sp.expand), (d2 - target).applyfunc(sp.expand))


IDENTITIES: list[Identity] = [
    Identity("saxe_mode_ode", _saxe_ode, "u(t) = s e^{2st/tau}/(e^{2st/tau}-1+s/u0) solves tau u' = 2u(s-u)", "Saxe et al. 2014"),
    Identity("saxe_mode_initial", _saxe_init, "u(0) = u0", "Saxe et al. 2014"),
    Identity("saxe_learning_time", _learning_time, "u(t_f) = f s at t_f = tau/(2s) ln(f(s/u0-1)/(1-f))", "Saxe et al. 2014"),
    Identity("conservation_2x2", _conservation, "d/dt (W1W1^T - W2^TW2) = 0 under gradient flow, symbolic 2x2", "Du et al. 2018"),
    Identity("conservation_rect", _conservation_rect, "same for n_in=3, h=2, n_out=3", "Du et al. 2018"),
    Identity("gd_imbalance_one_step", _gd_drift, "one GD step changes C by exactly eta^2 (W2^T E E^T W2 - W1 E^T E W1^T)", "Du et al. 2018"),
    *[
        Identity(f"depth{N}_mode_ode", _depth_mode_ode(N), f"balanced aligned depth-{N} chain: tau u' = N u^(2-2/N)(s-u)", "Saxe et al. 2014; Arora et al. 2018")
        for N in (2, 3, 4)
    ],
    *[
        Identity(f"depth{N}_implicit_time", _depth_time(N), f"F_{N}'(w) = 1/(w^{N - 1}(c^{N} - w^{N})), t(u) = tau F(u^(1/N))", "Saxe et al. 2014")
        for N in (2, 3, 4)
    ],
    *[
        Identity(f"depth{N}_implicit_time_u", _depth_time_chain(N), f"dt/du = tau/(N u^(2-2/N)(s-u)) for depth {N}", "Saxe et al. 2014")
        for N in (2, 3, 4)
    ],
    Identity("riccati_z_equation", _riccati_z_equation, "tau Z' = Gamma Z - Z Z^T Z/2 + J Z C/2, C = Z^T J Z, any init (2x2)", "Tarmoun et al. 2021"),
    Identity("riccati_lambda_balanced", _riccati_lambda_balanced, "C = lam I: X = ZZ^T obeys tau X' = AX + XA - X^2, A = Gamma + lam J/2", "Tarmoun et al. 2021"),
    Identity("riccati_solution_h1", _riccati_solution(1), "X = e^{At}Z0 K^{-1} Z0^T e^{At} solves X' = AX+XA-X^2 (2x1 Z0)", "Tarmoun et al. 2021"),
    Identity("riccati_solution_h2", _riccati_solution(2), "same with a 2x2 Z0", "Tarmoun et al. 2021"),
    Identity("tarmoun_rate_identity", _rate_identity, "(a^2+b^2)^2 = (a^2-b^2)^2 + 4a^2b^2: rate sqrt(4s^2+lam^2)", "Tarmoun et al. 2021"),
    Identity("arora_end_to_end_n3", _arora_balanced_n3, "balanced depth-3 layer-wise flow of W = end-to-end preconditioned flow", "Arora, Cohen & Hazan 2018"),
    Identity("width_one_solution", _width_one, "u_a = p_a^2 closed form solves p_a' = p_a(s_a - |p|^2)", "Chen, Lin & Zhang 2022"),
    Identity("width_one_reduction", _width_one_flow, "width-one net with W1^T = W2 = p (aligned coords) follows p' = p(s - |p|^2)", "Chen, Lin & Zhang 2022"),
    *_width_one_module.IDENTITIES,
]
