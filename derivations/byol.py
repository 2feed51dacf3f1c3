"""BYOL / SimSiam / DirectPred linear dynamics (Tian, Chen & Ganguli 2021): eigenmode theory checked in sympy.

Model: online W (n2 x n1), linear predictor Wp (n2 x n2), EMA target Wa; views x1, x2 of x, X = E[x x^T],
X' = E[Var(x_i | x)], so E[x1 x1^T] = X + X', E[x1 x2^T] = X. Loss J = 1/2 E||Wp W x1 - StopGrad(Wa x2)||^2 and
  Wp' = alpha_p (-Wp W (X+X') W^T + Wa X W^T) - eta Wp,   W' = Wp^T (-Wp W (X+X') + Wa X) - eta W,
  Wa' = beta (W - Wa).
With X = I, X' = sigma2 I (k = 1 + sigma2) and an aligned start W = U diag(w) V^T, Wa = U diag(a) V^T,
Wp = U diag(p) U^T the matrix flow stays aligned and decouples exactly into per-mode scalar ODEs
  p' = alpha_p w (a - k p w) - eta p,   w' = p (a - k p w) - eta w,   a' = beta (w - a)        (``mode_rhs``)
(the paper's (p_j, s_j = w_j^2, tau_j = a_j / w_j) variables). Facts derived and checked here:
- scaling: u = sqrt(alpha_p) w, v = sqrt(alpha_p) a removes alpha_p (it only rescales the online init);
- balancing: d/dt (alpha_p W W^T - Wp^T Wp) = -2 eta (same), any X, X', Wa (matrix identity);
- fixed points: collapsed (0, 0, 0) and p = p_pm = (1 +- sqrt(1 - 4 eta k)) / (2k), w = a = p / sqrt(alpha_p),
  which exist iff eta <= eta_c = 1/(4k); Jacobian characteristic polynomial lambda^3 + c1 lambda^2 + c2 lambda + c3
  with c1, c2, c3 > 0 and c1 c2 - c3 > 0 at p_+ (stable for every alpha_p, beta > 0), c3 < 0 at p_- (saddle);
  eigenvalues -eta, -eta, -beta at 0 (stable for eta > 0);
- basins (exact sufficient conditions, in scaled coordinates with 0 <= p0 <= u0, v0 >= 0):
  collapse if max(u0, v0) < p_- (p_- := inf when eta > eta_c);  no collapse if (p0 + u0)/2 > p_- and v0 > p_-
  (forward-invariant regions; see ``collapse_outcome``);
- no stop-gradient (target = W, gradient through both branches): w' = -w [(p-1)^2 + sigma2 (1 + p^2) + eta], and
  for the matrix flow ||W(t)|| <= ||W(0)|| exp(-(c_min + eta) t), c_min = sigma2 (2 + sigma2)/(1 + sigma2);
- fixed predictor eigenvalue p (no predictor: p = 1; max-normalised DirectPred top mode: p = 1 + eps):
  (w, a)' = A (w, a), A = [[-(k p^2 + eta), p], [beta, -beta]]; closed-form propagator ``fixed_predictor_propagator``;
- DirectPred with the balanced scale p_j = sqrt(alpha_p s_j) has the same non-trivial fixed point p_+ as the trained
  predictor; the max-normalised p_j = sqrt(s_j)/max sqrt(s) + eps collapses in this (un-normalised L2) model
  because the top mode has p = 1 + eps > 1/k >= p_+;
- SimSiam (Wa = W, balanced start): p' = -p (k p^2 - p + eta), solved in closed form t(p) (``simsiam_time``).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from ._checks import concrete

from .codegen import Identity, to_jax

__all__ = [
    "mode_rhs",
    "mode_jacobian",
    "eta_critical",
    "fixed_point_p",
    "fixed_point",
    "stability_coefficients",
    "stability_eigenvalues",
    "is_stable",
    "collapse_outcome",
    "balance_decay",
    "no_stopgrad_rate",
    "fixed_predictor_matrix",
    "fixed_predictor_propagator",
    "simsiam_time",
    "mode_rhs_numpy",
    "IDENTITIES",
]

# --------------------------------------------------------------------------------------------------------------
# input checks (concrete values only)


_concrete = concrete


def _check(name, x, positive=False, nonneg=False):
    a = _concrete(x)
    if a is None:
        return
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite, got {x!r}")
    if positive and np.any(a <= 0):
        raise ValueError(f"{name} must be positive, got {x!r}")
    if nonneg and np.any(a < 0):
        raise ValueError(f"{name} must be non-negative, got {x!r}")


# --------------------------------------------------------------------------------------------------------------
# symbols and the eigenmode system

p_, w_, a_, u_, v_ = sp.symbols("p w a u v", real=True)
t_ = sp.Symbol("t", nonnegative=True)
alpha_, eta_, beta_, sig2_, eps_ = sp.symbols("alpha_p eta beta sigma2 epsilon", positive=True)
k_ = 1 + sig2_

MODE_RHS = (
    alpha_ * w_ * (a_ - k_ * p_ * w_) - eta_ * p_,
    p_ * (a_ - k_ * p_ * w_) - eta_ * w_,
    beta_ * (w_ - a_),
)
MODE_VARS = (p_, w_, a_)
MODE_PARAMS = (alpha_, eta_, beta_, sig2_)
DISC = sp.sqrt(1 - 4 * eta_ * k_)
P_PLUS = (1 + DISC) / (2 * k_)
P_MINUS = (1 - DISC) / (2 * k_)
ETA_C = 1 / (4 * k_)
C_MIN = sig2_ * (2 + sig2_) / (1 + sig2_)


@functools.lru_cache(maxsize=None)
def _rhs_fn():
    return to_jax(list(MODE_RHS), [*MODE_VARS, *MODE_PARAMS])


@functools.lru_cache(maxsize=None)
def _jac_fn():
    J = sp.Matrix(MODE_RHS).jacobian(sp.Matrix(MODE_VARS))
    return to_jax(list(J), [*MODE_VARS, *MODE_PARAMS])


def mode_rhs(p, w, a, alpha_p, eta, beta, sigma2):
    """Per-mode BYOL ODE (Tian et al. 2021, aligned X=I, X'=sigma2 I): returns (p', w', a') =
    (alpha_p w (a - k p w) - eta p, p (a - k p w) - eta w, beta (w - a)), k = 1 + sigma2; broadcasts."""
    for n, x in (("alpha_p", alpha_p), ("beta", beta)):
        _check(n, x, positive=True)
    _check("eta", eta, nonneg=True)
    _check("sigma2", sigma2, nonneg=True)
    args = [jnp.asarray(x, dtype=float) for x in (p, w, a, alpha_p, eta, beta, sigma2)]
    return tuple(jnp.broadcast_to(r, jnp.broadcast_shapes(*(x.shape for x in args))) for r in _rhs_fn()(*args))


def mode_jacobian(p, w, a, alpha_p, eta, beta, sigma2):
    """3x3 Jacobian d(p', w', a')/d(p, w, a) of ``mode_rhs`` at one point (scalars in, (3, 3) array out)."""
    _check("alpha_p", alpha_p, positive=True)
    _check("beta", beta, positive=True)
    args = [jnp.asarray(x, dtype=float) for x in (p, w, a, alpha_p, eta, beta, sigma2)]
    entries = [jnp.broadcast_to(e, ()) for e in _jac_fn()(*args)]
    return jnp.stack(entries).reshape(3, 3)


def eta_critical(sigma2):
    """Largest weight decay with a non-collapsed fixed point: eta_c = 1 / (4 (1 + sigma2)) (Tian et al. 2021)."""
    _check("sigma2", sigma2, nonneg=True)
    return 1.0 / (4.0 * (1.0 + jnp.asarray(sigma2, dtype=float)))


def fixed_point_p(eta, sigma2, branch=1):
    """Non-trivial predictor eigenvalue p_pm = (1 +- sqrt(1 - 4 eta (1+sigma2))) / (2 (1+sigma2)); NaN if eta > eta_c."""
    _check("eta", eta, nonneg=True)
    _check("sigma2", sigma2, nonneg=True)
    if branch not in (1, -1):
        raise ValueError(f"branch must be +1 or -1, got {branch!r}")
    eta, sigma2 = jnp.asarray(eta, dtype=float), jnp.asarray(sigma2, dtype=float)
    k = 1.0 + sigma2
    disc = 1.0 - 4.0 * eta * k
    root = jnp.where(disc >= 0, jnp.sqrt(jnp.maximum(disc, 0.0)), jnp.nan)
    return (1.0 + branch * root) / (2.0 * k)


def fixed_point(eta, alpha_p, sigma2, branch=1):
    """Non-collapsed fixed point (p, w, a) = (p_pm, p_pm/sqrt(alpha_p), p_pm/sqrt(alpha_p)) of ``mode_rhs``."""
    _check("alpha_p", alpha_p, positive=True)
    p = fixed_point_p(eta, sigma2, branch)
    w = p / jnp.sqrt(jnp.asarray(alpha_p, dtype=float))
    return p, w, w


def stability_coefficients(eta, beta, sigma2, branch=1):
    """(c1, c2, c3) of det(lambda - J) = lambda^3 + c1 lambda^2 + c2 lambda + c3 at the p_pm fixed point
    (independent of alpha_p); Routh-Hurwitz: stable iff c1 > 0, c3 > 0, c1 c2 > c3."""
    _check("beta", beta, positive=True)
    eta, beta, sigma2 = (jnp.asarray(x, dtype=float) for x in (eta, beta, sigma2))
    k = 1.0 + sigma2
    D = branch * jnp.sqrt(1.0 - 4.0 * eta * k)
    c1 = (beta * k + 1.0 + D) / k
    c2 = (1.0 + D) * (beta + 2.0 * eta * (1.0 + D)) / (2.0 * k)
    c3 = beta * eta * D * (1.0 + D) / k
    return c1, c2, c3


def is_stable(eta, beta, sigma2, branch=1):
    """Routh-Hurwitz test at the p_pm fixed point: c1 > 0, c3 > 0 and c1 c2 > c3 (True at p_+ for all beta > 0 and
    0 < eta < eta_c; False at p_-, a saddle); NaN coefficients (eta > eta_c: no fixed point) give False."""
    c1, c2, c3 = stability_coefficients(eta, beta, sigma2, branch)
    return (c1 > 0) & (c3 > 0) & (c1 * c2 > c3)


def stability_eigenvalues(eta, beta, sigma2, branch=1):
    """Eigenvalues (complex, 3) of the Jacobian at the p_pm fixed point, as roots of the cubic (numpy; not traced);
    NaN when eta > eta_c (no fixed point)."""
    c1, c2, c3 = (float(c) for c in stability_coefficients(eta, beta, sigma2, branch))
    if not np.all(np.isfinite([c1, c2, c3])):  # eta > eta_c: the fixed point does not exist
        return np.full(3, np.nan + 0j)
    return np.roots([1.0, c1, c2, c3])


def collapse_outcome(p0, u0, v0, eta, sigma2):
    """Theory outcome from a start in scaled coordinates (p0, u0 = sqrt(alpha_p) w0, v0 = sqrt(alpha_p) a0),
    0 <= p0 <= u0, v0 >= 0: -1 collapse if max(u0, v0) < p_- (or eta > eta_c), +1 no collapse if eta < eta_c,
    (p0 + u0)/2 > p_- and v0 > p_-, 0 if these sufficient conditions decide nothing (exact invariant regions)."""
    p0, u0, v0, eta, sigma2 = (jnp.asarray(x, dtype=float) for x in (p0, u0, v0, eta, sigma2))
    pm = fixed_point_p(eta, sigma2, -1)
    exists = eta < eta_critical(sigma2)
    pm_eff = jnp.where(exists, pm, jnp.inf)
    collapse = jnp.maximum(u0, v0) < pm_eff
    survive = exists & (0.5 * (p0 + u0) > pm) & (v0 > pm)
    return jnp.where(collapse, -1, jnp.where(survive, 1, 0))


def balance_decay(t, c0, eta):
    """alpha_p W W^T - Wp^T Wp at time t: c0 exp(-2 eta t) (exact for any X, X', Wa; Tian et al. 2021 Thm 1)."""
    _check("eta", eta, nonneg=True)
    return jnp.asarray(c0, dtype=float) * jnp.exp(-2.0 * jnp.asarray(eta, dtype=float) * jnp.asarray(t, dtype=float))


def no_stopgrad_rate(eta, sigma2):
    """Guaranteed decay rate of ||W|| without stop-gradient (target = W): c_min + eta, c_min = sigma2(2+sigma2)/(1+sigma2)."""
    _check("eta", eta, nonneg=True)
    _check("sigma2", sigma2, nonneg=True)
    s = jnp.asarray(sigma2, dtype=float)
    return s * (2.0 + s) / (1.0 + s) + jnp.asarray(eta, dtype=float)


def fixed_predictor_matrix(p, eta, beta, sigma2):
    """A = [[-(k p^2 + eta), p], [beta, -beta]]: (w, a)' = A (w, a) for a fixed predictor eigenvalue p."""
    p, eta, beta, sigma2 = (jnp.asarray(x, dtype=float) for x in (p, eta, beta, sigma2))
    k = 1.0 + sigma2
    return jnp.array([[-(k * p**2 + eta), p], [beta, -beta]])


def fixed_predictor_propagator(t, p, eta, beta, sigma2):
    """exp(A t) for ``fixed_predictor_matrix`` in closed form, (e^{l1 t}(A - l2) - e^{l2 t}(A - l1)) / (l1 - l2),
    l12 = (tr A +- sqrt(tr^2 - 4 det)) / 2 (real, distinct for p, beta > 0); t scalar -> (2, 2)."""
    _check("beta", beta, positive=True)
    _check("eta", eta, nonneg=True)
    A = fixed_predictor_matrix(p, eta, beta, sigma2)
    tr = A[0, 0] + A[1, 1]
    det = A[0, 0] * A[1, 1] - A[0, 1] * A[1, 0]
    root = jnp.sqrt(tr**2 - 4.0 * det)
    l1, l2 = 0.5 * (tr + root), 0.5 * (tr - root)
    t = jnp.asarray(t, dtype=float)
    eye = jnp.eye(2)
    return (jnp.exp(l1 * t) * (A - l2 * eye) - jnp.exp(l2 * t) * (A - l1 * eye)) / (l1 - l2)


def simsiam_time(p, p0, eta, sigma2):
    """Exact time for the balanced SimSiam mode p' = -p (k p^2 - p + eta) (Wa = W) to go from p0 to p:
    t = -(1/k)[(k/eta) ln q + B ln|q - p_+| + C ln|q - p_-|]_{p0}^{p}, B = 1/(p_+(p_+ - p_-)), C = 1/(p_-(p_- - p_+))."""
    _check("eta", eta, positive=True)
    p, p0, eta, sigma2 = (jnp.asarray(x, dtype=float) for x in (p, p0, eta, sigma2))
    k = 1.0 + sigma2
    pp, pm = fixed_point_p(eta, sigma2, 1), fixed_point_p(eta, sigma2, -1)
    A, B, C = k / eta, 1.0 / (pp * (pp - pm)), 1.0 / (pm * (pm - pp))

    def F(q):
        return -(A * jnp.log(q) + B * jnp.log(jnp.abs(q - pp)) + C * jnp.log(jnp.abs(q - pm))) / k

    return F(p) - F(p0)


# --------------------------------------------------------------------------------------------------------------
# identities


def _sym_matrix(name, r, c, symmetric=False):
    if symmetric:
        syms = {}
        M = sp.zeros(r, c)
        for i in range(r):
            for j in range(c):
                key = (min(i, j), max(i, j))
                if key not in syms:
                    syms[key] = sp.Symbol(f"{name}_{key[0]}{key[1]}", real=True)
                M[i, j] = syms[key]
        return M
    return sp.Matrix(r, c, lambda i, j: sp.Symbol(f"{name}_{i}{j}", real=True))


def _matrix_setup(n1=3, n2=2):
    W = _sym_matrix("W", n2, n1)
    Wp = _sym_matrix("P", n2, n2)
    Wa = _sym_matrix("A", n2, n1)
    X = _sym_matrix("X", n1, n1, symmetric=True)
    Xp = _sym_matrix("Y", n1, n1, symmetric=True)
    return W, Wp, Wa, X, Xp


def _matrix_rhs(W, Wp, Wa, X, Xp):
    R = -Wp * W * (X + Xp) + Wa * X
    dWp = alpha_ * R * W.T - eta_ * Wp
    dW = Wp.T * R - eta_ * W
    dWa = beta_ * (W - Wa)
    return dW, dWp, dWa


def _loss(W, Wp, Wa, X, Xp):
    # 1/2 E||Wp W x1 - Wa x2||^2 with E[x1 x1^T] = E[x2 x2^T] = X + X', E[x1 x2^T] = X
    C = X + Xp
    return sp.Rational(1, 2) * ((Wp * W * C * W.T * Wp.T).trace() - 2 * (Wa * X * W.T * Wp.T).trace()
                                + (Wa * C * Wa.T).trace())


def _grad(J, M):
    return sp.Matrix(M.shape[0], M.shape[1], lambda i, j: sp.diff(J, M[i, j]))


def _id_matrix_gradient():
    W, Wp, Wa, X, Xp = _matrix_setup()
    J = sp.expand(_loss(W, Wp, Wa, X, Xp))
    dW, dWp, _ = _matrix_rhs(W, Wp, Wa, X, Xp)
    r1 = dW + _grad(J, W) + eta_ * W
    r2 = dWp + alpha_ * _grad(J, Wp) + eta_ * Wp
    return sp.Matrix.vstack(r1.reshape(r1.shape[0] * r1.shape[1], 1), r2.reshape(4, 1)).applyfunc(sp.expand)


def _id_balancing():
    W, Wp, Wa, X, Xp = _matrix_setup()
    dW, dWp, _ = _matrix_rhs(W, Wp, Wa, X, Xp)
    B = alpha_ * W * W.T - Wp.T * Wp
    dB = alpha_ * (dW * W.T + W * dW.T) - (dWp.T * Wp + Wp.T * dWp)
    return (dB + 2 * eta_ * B).applyfunc(sp.expand)


def _rot(th):
    return sp.Matrix([[sp.cos(th), -sp.sin(th)], [sp.sin(th), sp.cos(th)]])


def _id_alignment_decoupling():
    # aligned start: W = U diag(w) V^T etc. with rotations U, V; X = I, X' = sigma2 I
    th, ph = sp.symbols("theta phi", real=True)
    U, V = _rot(th), _rot(ph)
    ws, ps, as_ = sp.symbols("w1 w2", real=True), sp.symbols("p1 p2", real=True), sp.symbols("a1 a2", real=True)
    W = U * sp.diag(*ws) * V.T
    Wp = U * sp.diag(*ps) * U.T
    Wa = U * sp.diag(*as_) * V.T
    I2 = sp.eye(2)
    dW, dWp, dWa = _matrix_rhs(W, Wp, Wa, I2, sig2_ * I2)
    res = []
    for j in range(2):
        sub = {p_: ps[j], w_: ws[j], a_: as_[j]}
        target = [e.subs(sub) for e in MODE_RHS]
        res += [(U.T * dWp * U)[j, j] - target[0], (U.T * dW * V)[j, j] - target[1], (U.T * dWa * V)[j, j] - target[2]]
    # off-diagonal parts vanish: the aligned form is preserved
    res += [(U.T * dWp * U)[0, 1], (U.T * dWp * U)[1, 0], (U.T * dW * V)[0, 1], (U.T * dW * V)[1, 0]]
    return sp.Matrix(res).applyfunc(lambda e: sp.expand(sp.trigsimp(sp.expand(e))))


def _id_scaling():
    # u = sqrt(alpha) w, v = sqrt(alpha) a: the scaled system has no alpha
    s = sp.sqrt(alpha_)
    sub = {w_: u_ / s, a_: v_ / s}
    pdot, wdot, adot = (e.subs(sub) for e in MODE_RHS)
    free = (p_ * (v_ - k_ * p_ * u_) - eta_ * u_, u_ * (v_ - k_ * p_ * u_) - eta_ * p_, beta_ * (u_ - v_))
    return sp.Matrix([pdot - free[1], s * wdot - free[0], s * adot - free[2]]).applyfunc(sp.simplify)


def _fixed_point_sub(pstar):
    ws = pstar / sp.sqrt(alpha_)
    return {p_: pstar, w_: ws, a_: ws}


def _id_fixed_points():
    res = [e.subs(_fixed_point_sub(P)) for P in (P_PLUS, P_MINUS) for e in MODE_RHS]
    res += [e.subs({p_: 0, w_: 0, a_: 0}) for e in MODE_RHS]
    return sp.Matrix(res).applyfunc(sp.simplify)


def _id_fixed_points_complete():
    # sympy.solve of w' = 0 (w != 0) with a = w gives exactly p_pm: (1+sigma2) p^2 - p + eta = 0
    sols = sp.solve(sp.expand(MODE_RHS[1].subs(a_, w_) / w_), p_)
    expected = [P_MINUS, P_PLUS]
    sols = sorted(sols, key=lambda e: float(e.subs({eta_: sp.Rational(1, 100), sig2_: sp.Rational(1, 2)})))
    return sp.Matrix([sp.simplify(s - e) for s, e in zip(sols, expected)] + [len(sols) - 2])


def _charpoly_coeffs(pstar):
    lam = sp.Symbol("lambda")
    J = sp.Matrix(MODE_RHS).jacobian(sp.Matrix(MODE_VARS)).subs(_fixed_point_sub(pstar))
    poly = sp.Poly(sp.expand((lam * sp.eye(3) - J).det()), lam)
    return poly.all_coeffs()


def _id_charpoly(branch):
    def build():
        D = branch * DISC
        P = P_PLUS if branch == 1 else P_MINUS
        c = _charpoly_coeffs(P)
        c1 = (beta_ * k_ + 1 + D) / k_
        c2 = (1 + D) * (beta_ + 2 * eta_ * (1 + D)) / (2 * k_)
        c3 = beta_ * eta_ * D * (1 + D) / k_
        return sp.Matrix([c[0] - 1, c[1] - c1, c[2] - c2, c[3] - c3]).applyfunc(sp.simplify)

    return build


def _id_routh_hurwitz():
    # at p_+: c1 c2 - c3 = (1+D)/(2k^2) [beta^2 k + 2 eta beta k + (1+D) beta + 2 eta (1+D)^2] > 0
    D = DISC
    c1 = (beta_ * k_ + 1 + D) / k_
    c2 = (1 + D) * (beta_ + 2 * eta_ * (1 + D)) / (2 * k_)
    c3 = beta_ * eta_ * D * (1 + D) / k_
    rhs = (1 + D) / (2 * k_**2) * (beta_**2 * k_ + 2 * eta_ * beta_ * k_ + (1 + D) * beta_ + 2 * eta_ * (1 + D) ** 2)
    return sp.simplify(sp.expand(c1 * c2 - c3 - rhs))


def _id_origin_eigs():
    J = sp.Matrix(MODE_RHS).jacobian(sp.Matrix(MODE_VARS)).subs({p_: 0, w_: 0, a_: 0})
    lam = sp.Symbol("lambda")
    return sp.expand((lam * sp.eye(3) - J).det() - (lam + eta_) ** 2 * (lam + beta_))


def _id_balance_mode():
    c = alpha_ * w_**2 - p_**2
    dc = 2 * alpha_ * w_ * MODE_RHS[1] - 2 * p_ * MODE_RHS[0]
    return sp.expand(dc + 2 * eta_ * c)


def _id_invariant_regions():
    # faces of the forward-invariant regions in scaled coords x = (p+u)/2, y = (u-p)/2:
    # x' = x (v - k (x^2 - y^2) - eta); on x = p_-: x' = p_- (v - p_- + k y^2)  (>= 0 for v >= p_-)
    x, y = sp.symbols("x y", real=True)
    pu = {p_: x - y, u_: x + y}
    pdot = (u_ * (v_ - k_ * p_ * u_) - eta_ * p_).subs(pu)
    udot = (p_ * (v_ - k_ * p_ * u_) - eta_ * u_).subs(pu)
    xdot = (pdot + udot) / 2
    r1 = sp.expand(xdot - x * (v_ - k_ * (x**2 - y**2) - eta_))
    r2 = sp.simplify(xdot.subs(x, P_MINUS) - P_MINUS * (v_ - P_MINUS + k_ * y**2))
    # u' on u = U, v = U with 0 <= p <= U: u' <= U (p (1 - k p) - eta) (equality at v = U, p arbitrary)
    U = sp.Symbol("U", positive=True)
    r3 = sp.expand((p_ * (v_ - k_ * p_ * u_) - eta_ * u_).subs({u_: U, v_: U}) - U * (p_ * (1 - k_ * p_) - eta_))
    return sp.Matrix([r1, r2, r3])


def _id_no_stopgrad():
    # no stop-gradient, target = W: -dJ/dW for aligned modes, X = 1, X' = sigma2, predictor eigenvalue p
    J = sp.Rational(1, 2) * (p_**2 * w_**2 * k_ - 2 * p_ * w_**2 + w_**2 * k_)
    wdot = -sp.diff(J, w_) - eta_ * w_
    r1 = sp.expand(wdot + w_ * ((p_ - 1) ** 2 + sig2_ * (1 + p_**2) + eta_))
    # c_min = min_p [(p-1)^2 + sigma2 (1 + p^2)] attained at p = 1/k
    g = (p_ - 1) ** 2 + sig2_ * (1 + p_**2)
    pstar = sp.solve(sp.diff(g, p_), p_)[0]
    r2 = sp.simplify(g.subs(p_, pstar) - C_MIN)
    r3 = sp.simplify(pstar - 1 / k_)
    return sp.Matrix([r1, r2, r3])


def _id_no_stopgrad_matrix():
    # column-wise: ||(P - I) w||^2 + sigma2 ||P w||^2 + sigma2 ||w||^2 - c_min ||w||^2 = (1+sigma2) ||P w - w/(1+sigma2)||^2
    W = _sym_matrix("W", 2, 1)
    P = _sym_matrix("P", 2, 2)
    lhs = ((P - sp.eye(2)) * W).norm() ** 2 + sig2_ * (P * W).norm() ** 2 + sig2_ * W.norm() ** 2 - C_MIN * W.norm() ** 2
    rhs = k_ * (P * W - W / k_).norm() ** 2
    return sp.simplify(sp.expand(lhs - rhs))


def _id_propagator():
    A = sp.Matrix([[-(k_ * p_**2 + eta_), p_], [beta_, -beta_]])
    tr, det = A.trace(), A.det()
    root = sp.sqrt(tr**2 - 4 * det)
    l1, l2 = (tr + root) / 2, (tr - root) / 2
    Phi = (sp.exp(l1 * t_) * (A - l2 * sp.eye(2)) - sp.exp(l2 * t_) * (A - l1 * sp.eye(2))) / (l1 - l2)
    r1 = (Phi.diff(t_) - A * Phi).applyfunc(lambda e: sp.simplify(sp.expand(e)))
    r2 = (Phi.subs(t_, 0) - sp.eye(2)).applyfunc(sp.simplify)
    return sp.Matrix.vstack(r1, r2)


def _id_directpred_balanced():
    # DirectPred with p = sqrt(alpha s) = u (scaled): u' = u (v - k u^2 - eta) has fixed points u = v = p_pm
    res = [(P * (v_ - k_ * P**2 - eta_)).subs(v_, P) for P in (P_PLUS, P_MINUS)]
    return sp.Matrix(res).applyfunc(sp.simplify)


def _id_directpred_normalised():
    # top mode p = 1 + eps: det A = beta (k p^2 - p + eta) = beta k (p - p_+)(p - p_-) > 0 since p >= 1 >= 1/k > p_+
    p1 = 1 + eps_
    det = beta_ * (k_ * p1**2 - p1 + eta_)
    return sp.simplify(sp.expand(det - beta_ * k_ * (p1 - P_PLUS) * (p1 - P_MINUS)))


def _id_simsiam_time():
    q, q0 = sp.symbols("q q_0", positive=True)
    A, B, C = k_ / eta_, 1 / (P_PLUS * (P_PLUS - P_MINUS)), 1 / (P_MINUS * (P_MINUS - P_PLUS))
    F = -(A * sp.log(q) + B * sp.log(q - P_PLUS) + C * sp.log(q - P_MINUS)) / k_
    # dt/dq = 1 / q' with q' = -q (k q^2 - q + eta); check with eta = 1/10, sigma2 = 1/2 symbolic in q
    vals = {eta_: sp.Rational(1, 10), sig2_: sp.Rational(1, 2)}
    r1 = sp.simplify((sp.diff(F, q) * (-q * (k_ * q**2 - q + eta_))).subs(vals) - 1)
    # and for general parameters through the partial-fraction identity
    pf = A / q + B / (q - P_PLUS) + C / (q - P_MINUS) - 1 / (q * (q - P_PLUS) * (q - P_MINUS))
    r2 = sp.simplify(sp.together(pf))
    # the SimSiam balanced reduction: Wa = W, alpha w^2 = p^2 -> p' = -p (k p^2 - p + eta)
    pdot = (alpha_ * w_ * (w_ - k_ * p_ * w_) - eta_ * p_).subs(w_, p_ / sp.sqrt(alpha_))
    r3 = sp.expand(pdot + p_ * (k_ * p_**2 - p_ + eta_))
    return sp.Matrix([r1, r2, r3])


IDENTITIES: list[Identity] = [
    Identity("matrix_gradient", _id_matrix_gradient, "W', Wp' = -grad J - eta (.) with stop-grad on Wa (n1=3, n2=2, general X, X')", "Tian et al. 2021"),
    Identity("balancing_matrix", _id_balancing, "d/dt (alpha_p W W^T - Wp^T Wp) = -2 eta (same), any X, X', Wa", "Tian et al. 2021"),
    Identity("alignment_decoupling", _id_alignment_decoupling, "aligned W, Wp, Wa stay aligned; diagonal = per-mode ODEs (2 modes, rotations)", "Tian et al. 2021"),
    Identity("alpha_scaling", _id_scaling, "u = sqrt(alpha_p) w, v = sqrt(alpha_p) a removes alpha_p", "Tian et al. 2021"),
    Identity("fixed_points", _id_fixed_points, "(p_pm, p_pm/sqrt(alpha), p_pm/sqrt(alpha)) and 0 are fixed points", "Tian et al. 2021"),
    Identity("fixed_points_solve", _id_fixed_points_complete, "sympy.solve of (1+sigma2)p^2 - p + eta = 0 gives exactly p_pm", "Tian et al. 2021"),
    Identity("charpoly_plus", _id_charpoly(1), "det(lambda - J) at p_+: c1, c2, c3 closed forms", "Tian et al. 2021"),
    Identity("charpoly_minus", _id_charpoly(-1), "det(lambda - J) at p_-: c3 = -beta eta D (1 - D)/k < 0 (saddle)", "Tian et al. 2021"),
    Identity("routh_hurwitz_plus", _id_routh_hurwitz, "c1 c2 - c3 at p_+ is a sum of positive terms (stable for all beta)", "Tian et al. 2021"),
    Identity("origin_eigenvalues", _id_origin_eigs, "Jacobian at collapse has eigenvalues -eta, -eta, -beta", "Tian et al. 2021"),
    Identity("balance_mode", _id_balance_mode, "d/dt (alpha w^2 - p^2) = -2 eta (alpha w^2 - p^2) per mode", "Tian et al. 2021"),
    Identity("invariant_region_faces", _id_invariant_regions, "face velocities of the invariant regions bounding the basins", ""),
    Identity("no_stopgrad_mode", _id_no_stopgrad, "no stop-grad: w' = -w[(p-1)^2 + sigma2(1+p^2) + eta], min over p = c_min", "Tian et al. 2021"),
    Identity("no_stopgrad_matrix_bound", _id_no_stopgrad_matrix, "2J - c_min ||W||^2 = k ||Wp W - W/k||^2 >= 0 (column-wise)", ""),
    Identity("fixed_predictor_propagator", _id_propagator, "closed-form exp(At) solves Phi' = A Phi, Phi(0) = I", ""),
    Identity("directpred_balanced", _id_directpred_balanced, "DirectPred p = sqrt(alpha s): same fixed points p_pm", "Tian et al. 2021"),
    Identity("directpred_normalised_top", _id_directpred_normalised, "top-mode p = 1+eps: det A = beta k (p-p_+)(p-p_-) > 0 (collapse)", ""),
    Identity("simsiam_closed_form", _id_simsiam_time, "t(p) solves the balanced SimSiam mode p' = -p(kp^2 - p + eta)", "Tian et al. 2021"),
]


@functools.lru_cache(maxsize=None)
def mode_rhs_numpy():
    """numpy version of ``mode_rhs`` (sympy lambdify), f(p, w, a, alpha_p, eta, beta, sigma2) -> [p', w', a'],
    for scipy integrators in `compare` (the eigenmode theory as an ODE independent of the JAX matrix flow)."""
    return sp.lambdify([*MODE_VARS, *MODE_PARAMS], list(MODE_RHS), "numpy")
