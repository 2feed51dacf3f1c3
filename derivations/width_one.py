"""Depth-N linear network with a width-one layer from a balanced start (Chen, Lin & Zhang 2022): exact reduction.

Setting: whitened inputs, Sigma_yx = U S V^T; coordinates are the singular bases (a in U-coordinates, b in
V-coordinates; entries beyond r = len(s) are null directions of Sigma_yx). A balanced start with a width-one layer
keeps the product rank one, W = sigma a b^T with |a| = |b| = 1, and the layer-wise gradient flow reduces to

    tau sigma' = N sigma^{2-2/N} (rho - sigma),      rho = a^T S b,
    tau a' = sigma^{1-2/N} (S b - rho a),  tau b' = sigma^{1-2/N} (S^T a - rho b).

In the clock d(clock) = sigma^{1-2/N} dt/tau the direction is Oja's flow of M = [[0, S], [S^T, 0]] on z = (a, b)/sqrt2,
solved by z = e^{M clock} z0 / n, n = |e^{M clock} z0| (so rho = d ln n / d clock), and sigma obeys the Bernoulli
equation d sigma / d clock = N sigma (rho - sigma), solved by sigma = sigma0 n^N / J, J = 1 + N sigma0 int n^N.
Stage laws that follow (all exact identities below):
  * at a critical point sigma -> s_k (global minimum k = 1, else a saddle): linear rate
    min(N s_k^{2-2/N}, 2 s_k^{1-2/N} (s_k - s_j)) for the largest later mode j present in a0 + b0 (s_j = 0 for a
    null direction present in a0 or b0);
  * to the origin with rho -> -s_m < 0 (a0 + b0 = 0 on every mode with s > 0): w = sigma^{-(1-2/N)} obeys
    tau w' = (N-2)(sigma - rho), so sigma ~ ((N-2) s_m t)^{-N/(N-2)} for N >= 3 (polynomial), rate 2 s_m for N = 2;
  * to the origin inside the null space (rho = 0): sigma = (sigma0^{-(2-2/N)} + 2(N-1) t)^{-N/(2N-2)} at every depth.

Functions: ``width_one_direction`` (jax, jit/vmap safe), ``width_one_deep_solution`` (NumPy/SciPy: closed form in the
clock, the clock t -> clock by one scalar quadrature; exact closed form for N = 2), ``width_one_null_decay``.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import sympy as sp
from jax.scipy.special import logsumexp as jax_logsumexp
from scipy.special import logsumexp as np_logsumexp
from scipy.integrate import solve_ivp

from ._checks import check_depth, concrete
from .codegen import Identity

__all__ = ["width_one_direction", "width_one_deep_solution", "width_one_null_decay", "IDENTITIES"]


def _check_start(a0, b0, s):
    a, b, sv = concrete(a0), concrete(b0), concrete(s)
    for name, x in (("a0", a), ("b0", b), ("s", sv)):
        if x is not None and (x.ndim != 1 or not np.all(np.isfinite(x))):
            raise ValueError(f"{name} must be a finite 1-D array, got {x!r}")
    if sv is not None and np.any(sv < 0):
        raise ValueError(f"s must be non-negative singular values, got {sv!r}")
    if a is not None and b is not None and sv is not None:
        if len(sv) > min(len(a), len(b)):
            raise ValueError(f"s has {len(sv)} singular values but a0 has {len(a)} and b0 {len(b)} entries")
        for name, x in (("a0", a), ("b0", b)):
            if abs(np.linalg.norm(x) - 1) > 1e-8:
                raise ValueError(f"{name} must be a unit vector (|{name}| = {np.linalg.norm(x):.6g})")


def width_one_direction(clock, a0, b0, s):
    """Two-sided Oja flow a' = S b - rho a, b' = S^T a - rho b in the clock: z = e^{M c} z0/|e^{M c} z0| (exact).

    clock: (n,); a0: (d_out,), b0: (d_in,) unit vectors in singular coordinates; s: (r,). Returns a (n, d_out),
    b (n, d_in), log n (n,) and rho = a^T S b (n,), computed in log space (no overflow for large clock).
    """
    _check_start(a0, b0, s)
    return _direction(jnp, jax_logsumexp, clock, a0, b0, s)


def _direction(xp, lse, clock, a0, b0, s):
    """Body of width_one_direction for an array module xp (jax.numpy or numpy) and its logsumexp."""
    c = xp.atleast_1d(xp.asarray(clock, dtype=float))[:, None]
    a0, b0, s = (xp.asarray(x, dtype=float) for x in (a0, b0, s))
    r = s.shape[0]
    x, y = a0[:r] + b0[:r], a0[:r] - b0[:r]
    null = xp.sum(a0[r:] ** 2) + xp.sum(b0[r:] ** 2)
    # n^2 = sum_i (x_i^2 e^{2 s_i c} + y_i^2 e^{-2 s_i c})/4 + null/2
    expo = xp.concatenate([2 * s * c, -2 * s * c, xp.zeros_like(c)], axis=1)
    weights = xp.concatenate([x**2 / 4, y**2 / 4, xp.atleast_1d(null / 2)])
    log_n = 0.5 * lse(expo, b=weights[None, :], axis=1)
    # x_i e^{s_i c}/n and y_i e^{-s_i c}/n via logs, so that a zero coefficient never meets an overflowing exponential
    tiny = xp.finfo(float).tiny
    log_x, log_y = xp.log(xp.maximum(xp.abs(x), tiny)), xp.log(xp.maximum(xp.abs(y), tiny))
    up = xp.sign(x) * xp.exp(xp.where(x != 0, log_x + s * c - log_n[:, None], -xp.inf))
    down = xp.sign(y) * xp.exp(xp.where(y != 0, log_y - s * c - log_n[:, None], -xp.inf))
    a_modes, b_modes = (up + down) / 2, (up - down) / 2
    def null_part(v):  # v e^{-ln n}, without 0 * inf when n underflows
        log_v = xp.log(xp.maximum(xp.abs(v), tiny))
        return xp.sign(v) * xp.exp(xp.where(v != 0, log_v - log_n[:, None], -xp.inf))

    a = xp.concatenate([a_modes, null_part(a0[r:])], axis=1)
    b = xp.concatenate([b_modes, null_part(b0[r:])], axis=1)
    rho = xp.sum(s * a_modes * b_modes, axis=1)
    return a, b, log_n, rho


def width_one_null_decay(t, sigma0, depth, tau=1.0):
    """Start in the null space of Sigma_yx (rho = 0): sigma(t) = (sigma0^{-(2-2/N)} + 2(N-1) t/tau)^{-N/(2N-2)}."""
    N = check_depth(depth)
    p = 2 - 2 / N
    return (jnp.asarray(sigma0, dtype=float) ** (-p) + 2 * (N - 1) * jnp.asarray(t, dtype=float) / tau) ** (-1 / p)


def _log_sigma_depth2(clock, a0, b0, sigma0, s):
    """ln sigma(c) for N = 2: sigma = sigma0 n^2 / J, J = 1 + 2 sigma0 int_0^c n^2 (closed form, signed log-sum-exp)."""
    c = np.asarray(clock, dtype=float)
    r = len(s)
    x, y = a0[:r] + b0[:r], a0[:r] - b0[:r]
    null = np.sum(a0[r:] ** 2) + np.sum(b0[r:] ** 2)
    # int_0^c w e^{lam u} du = (w/lam)(e^{lam c} - 1) (lam != 0), w c (lam = 0); lam = +-2 s_i, w = x_i^2/4, y_i^2/4
    lam = np.concatenate([2 * s, -2 * s])
    w = np.concatenate([x**2 / 4, y**2 / 4])
    zero = (lam == 0) | (w == 0)
    w0 = null / 2 + np.sum(np.where(lam == 0, w, 0.0))
    lam, w = lam[~zero], w[~zero]
    coef = 2 * sigma0 * w / lam
    const = 1.0 - np.sum(coef)
    expo = np.concatenate([np.zeros((len(c), 1)), lam[None, :] * c[:, None], np.log(np.maximum(c, 1e-300))[:, None]], axis=1)
    b = np.concatenate([[const], coef, [2 * sigma0 * w0]])
    log_j, sign = np_logsumexp(expo, b=np.broadcast_to(b, expo.shape), axis=1, return_sign=True)
    if np.any(sign <= 0):
        raise RuntimeError("J = 1 + 2 sigma0 int n^2 must be positive (cancellation)")
    log_n = _direction(np, np_logsumexp, c, a0, b0, s)[2]
    return np.log(sigma0) + 2 * log_n - log_j


def width_one_deep_solution(t, a0, b0, sigma0, s, depth, tau=1.0, rtol=1e-12, atol=1e-14):
    """Exact width-one balanced depth-N trajectory W(t) = sigma a b^T (Chen, Lin & Zhang 2022 setting).

    Direction from ``width_one_direction`` (closed form in the clock); N = 2: clock = t/tau and sigma = sigma0 n^2/J
    in closed form; N >= 3: the clock and sigma by a two-variable DOP853 quadrature (d clock/dt = sigma^{1-2/N}/tau,
    d ln sigma/dt = N sigma^{1-2/N}(rho(clock) - sigma)/tau with the closed-form rho). NumPy/SciPy, not jit-able.
    t: (n,) increasing from 0. Returns a dict with t, clock, sigma, a, b, rho.
    """
    N = check_depth(depth)
    _check_start(a0, b0, s)
    t = np.asarray(t, dtype=float)
    if t.ndim != 1 or t[0] != 0 or np.any(np.diff(t) <= 0):
        raise ValueError("t must be a 1-D increasing array starting at 0")
    s0 = float(sigma0)
    if not np.isfinite(s0) or s0 <= 0:
        raise ValueError(f"sigma0 must be positive, got {sigma0!r}")
    if not tau > 0:
        raise ValueError(f"tau must be positive, got {tau!r}")
    a0, b0, s = (np.asarray(x, dtype=float) for x in (a0, b0, s))
    if N == 2:
        clock = t / tau
        sigma = np.exp(_log_sigma_depth2(clock, a0, b0, s0, s))
    else:
        clock, sigma = _clock_quadrature(t / tau, a0, b0, s0, s, N, rtol, atol)
    a, b, _, rho = _direction(np, np_logsumexp, clock, a0, b0, s)
    return {"t": t, "clock": clock, "sigma": sigma, "a": np.asarray(a), "b": np.asarray(b), "rho": np.asarray(rho)}


def _clock_quadrature(t, a0, b0, sigma0, s, N, rtol, atol):
    """Clock c(t) and q = ln(sigma/sigma0) from dc/dt = sigma^{1-2/N}, dq/dt = N sigma^{1-2/N}(rho(c) - sigma)
    (the Bernoulli equation with the closed-form rho(c) = (ln n)'; q stays O(1), unlike ln J)."""

    def rhs(_, y):
        rho = _direction(np, np_logsumexp, y[:1], a0, b0, s)[3][0]
        sg = sigma0 * np.exp(y[1])
        clock_rate = sg ** (1 - 2 / N)
        return [clock_rate, N * clock_rate * (rho - sg)]

    sol = solve_ivp(rhs, (t[0], t[-1]), [0.0, 0.0], method="DOP853", t_eval=t, rtol=rtol, atol=atol)
    if not sol.success:
        raise RuntimeError(f"clock quadrature failed: {sol.message}")
    return sol.y[0], sigma0 * np.exp(sol.y[1])


# --------------------------------------------------------------------------------------------------------------
# identities

t_, c_ = sp.symbols("t c", real=True)


def _layer_flow_residual(N):
    # all hidden widths 1: W1 = k b^T, Wj = k (1x1), WN = k a with k = sigma^{1/N}, a, b unit (angles), S = diag(s1, s2).
    # Impose the reduced flow (sigma', alpha', beta') and check every layer's gradient flow equation.
    s1, s2, sig = sp.symbols("s1 s2 sigma", positive=True)
    al, be = sp.symbols("alpha beta", real=True)
    S = sp.diag(s1, s2)
    a, b = sp.Matrix([sp.cos(al), sp.sin(al)]), sp.Matrix([sp.cos(be), sp.sin(be)])
    k = sig ** sp.Rational(1, N)
    Ws = [k * b.T] + [sp.Matrix([[k]])] * (N - 2) + [k * a]
    rho = (a.T * S * b)[0]
    dsig = N * sig ** (2 - sp.Rational(2, N)) * (rho - sig)
    dal = sig ** (1 - sp.Rational(2, N)) * (S * b - rho * a).dot(sp.Matrix([-sp.sin(al), sp.cos(al)]))
    dbe = sig ** (1 - sp.Rational(2, N)) * (S.T * a - rho * b).dot(sp.Matrix([-sp.sin(be), sp.cos(be)]))

    def prod(ms):
        out = ms[0]
        for m in ms[1:]:
            out = m * out
        return out

    E = S - prod(Ws)
    res = []
    for j, W in enumerate(Ws):
        left = prod(Ws[j + 1:]) if j < N - 1 else sp.eye(W.shape[0])
        right = prod(Ws[:j]) if j > 0 else sp.eye(W.shape[1])
        grad = left.T * E * right.T
        dW = W.diff(sig) * dsig + W.diff(al) * dal + W.diff(be) * dbe
        res.append((dW - grad).applyfunc(lambda e: sp.simplify(sp.expand_trig(e))))
    return sp.Matrix.vstack(*[r.reshape(r.rows * r.cols, 1) for r in res])


def _oja_solution():
    # a_i = (x_i e^{s_i c} + y_i e^{-s_i c})/(2n), b_i = (x_i e^{s_i c} - y_i e^{-s_i c})/(2n), two modes + a null pair
    s1, s2 = sp.symbols("s1 s2", positive=True)
    x1, x2, y1, y2, g, h = sp.symbols("x1 x2 y1 y2 g h", real=True)
    n = sp.sqrt((x1**2 * sp.exp(2 * s1 * c_) + y1**2 * sp.exp(-2 * s1 * c_) + x2**2 * sp.exp(2 * s2 * c_)
                 + y2**2 * sp.exp(-2 * s2 * c_)) / 4 + (g**2 + h**2) / 2)
    a = sp.Matrix([(x1 * sp.exp(s1 * c_) + y1 * sp.exp(-s1 * c_)) / (2 * n),
                   (x2 * sp.exp(s2 * c_) + y2 * sp.exp(-s2 * c_)) / (2 * n), g / n])
    b = sp.Matrix([(x1 * sp.exp(s1 * c_) - y1 * sp.exp(-s1 * c_)) / (2 * n),
                   (x2 * sp.exp(s2 * c_) - y2 * sp.exp(-s2 * c_)) / (2 * n), h / n])
    S = sp.diag(s1, s2, 0)
    rho = (a.T * S * b)[0]
    res = sp.Matrix.vstack(a.diff(c_) - (S * b - rho * a), b.diff(c_) - (S.T * a - rho * b),
                           sp.Matrix([sp.diff(sp.log(n), c_) - rho]))
    return res.applyfunc(lambda e: sp.simplify(sp.powsimp(sp.expand(e))))


def _bernoulli():
    # sigma = sigma0 n^N / (1 + N sigma0 F), F' = n^N, rho = n'/n  =>  d sigma/dc = N sigma (rho - sigma)
    N, s0 = sp.symbols("N sigma0", positive=True)
    n, F = sp.Function("n")(c_), sp.Function("F")(c_)
    sig = s0 * n**N / (1 + N * s0 * F)
    rho = n.diff(c_) / n
    res = sig.diff(c_) - N * sig * (rho - sig)
    return sp.Matrix([sp.simplify(res.subs(F.diff(c_), n**N))])


def _null_decay():
    # sigma = X^{-1/p}, X = sigma0^{-p} + 2(N-1) t > 0, p = 2 - 2/N: d sigma/dt = 2(N-1) d sigma/dX = -N sigma^{3-2/N}
    N, s0, X = sp.symbols("N sigma0 X", positive=True)
    p = 2 - 2 / N
    sig = X ** (-1 / p)
    res = 2 * (N - 1) * sig.diff(X) + N * sig ** (3 - 2 / N)
    return sp.Matrix([sp.simplify(sp.powsimp(sp.powdenest(sp.expand(res), force=True), force=True)),
                      sp.simplify(sp.powsimp((s0 ** (-p)) ** (-1 / p), force=True) - s0)])


def _origin_rate():
    # w = sigma^{-(1-2/N)} under sigma' = N sigma^{2-2/N}(rho - sigma) obeys w' = (N-2)(sigma - rho)
    N, sig, rho = sp.symbols("N sigma rho", positive=True)
    w = sig ** (-(1 - 2 / N))
    dsig = N * sig ** (2 - 2 / N) * (rho - sig)
    return sp.Matrix([sp.simplify(sp.powsimp(sp.expand(w.diff(sig) * dsig - (N - 2) * (sig - rho)), force=True))])


IDENTITIES: list[Identity] = [
    *[
        Identity(f"width_one_depth{N}_reduction", (lambda N=N: _layer_flow_residual(N)),
                 f"depth-{N} balanced width-one net W = sigma a b^T: every layer's gradient flow is the reduced flow "
                 "sigma' = N sigma^(2-2/N)(rho - sigma), a' = sigma^(1-2/N)(Sb - rho a)", "Chen, Lin & Zhang 2022")
        for N in (2, 3, 4)
    ],
    Identity("width_one_oja_solution", _oja_solution, "z = e^{Mc} z0/|e^{Mc} z0| solves a' = Sb - rho a, b' = S^T a - rho b; "
             "rho = (ln n)'", "Chen, Lin & Zhang 2022"),
    Identity("width_one_bernoulli", _bernoulli, "sigma = sigma0 n^N/(1 + N sigma0 int n^N) solves dsigma/dc = N sigma(rho - sigma)",
             "Chen, Lin & Zhang 2022"),
    Identity("width_one_null_decay", _null_decay, "rho = 0: sigma = (sigma0^-(2-2/N) + 2(N-1)t)^(-N/(2N-2)) (polynomial)",
             "Chen, Lin & Zhang 2022"),
    Identity("width_one_origin_rate", _origin_rate, "w = sigma^-(1-2/N): w' = (N-2)(sigma - rho): polynomial decay to the "
             "origin for N >= 3", "Chen, Lin & Zhang 2022"),
]
