"""Diagonal linear networks: mirror-flow closed forms, implicit-bias potentials, exact (S)GD identities.

Conventions (spec PART A): L(beta) = ||X beta - y||^2 / (2n), g = grad L = X^T (X beta - y) / n.
(W) beta = w+^2 - w-^2, w+(0) = w-(0) = alpha;  (P) beta = u*v, u(0) = sqrt(2) alpha, v(0) = 0;
(W-D) beta = w+^D - w-^D.  Papers: Woodworth et al. 2020 (kernel vs rich), Even, Pesme, Gunasekar &
Flammarion 2023 (implicit bias of (S)GD step size), Pesme, Pillaud-Vivien & Flammarion 2021 (SGD and
int L), Nacson et al. 2022 (stability bias), Pesme & Flammarion 2023 (saddle-to-saddle).

Theory only: sympy identities (`IDENTITIES`), closed forms in jax.numpy, and exact convex/LP solvers in
numpy/scipy used as the theory side of the comparisons. Never imports `toymodels`.
"""

from __future__ import annotations

import numpy as np
import jax.numpy as jnp
import sympy as sp

from .codegen import Identity

__all__ = [
    "q", "potential", "psi", "h_depth", "H_depth",
    "beta_mirror_P", "beta_mirror_W", "reduced_ode_rhs", "reduced_flow",
    "mirror_limit", "depth_limit", "min_l1_interpolator", "min_l2_interpolator",
    "alpha_inf_from_log_products", "phi_inf_from_sums", "pesme_log_alpha_ratio",
    "sharpness_at_interpolator", "stability_weighted_l1", "saddle_to_saddle", "l1_gap_bound",
    "uv_hessian_blocks", "uv_from_beta", "gf_path_sharpness",
    "IDENTITIES",
]

# ---------------------------------------------------------------------------------------------------------
# sympy objects
z, x = sp.symbols("z x", real=True)
beta_s = sp.Symbol("beta", real=True)
bpos = sp.Symbol("b", positive=True)
alpha_s = sp.Symbol("alpha", positive=True)
gam, g, G = sp.symbols("gamma g G", real=True)
u, v = sp.symbols("u v", real=True)

q_expr = 2 - sp.sqrt(4 + z**2) + z * sp.asinh(z / 2)            # q(z), Woodworth (W)
Q_expr = alpha_s**2 * q_expr.subs(z, beta_s / alpha_s**2)       # Q_alpha(beta) per coordinate (W)
psi_expr = sp.Rational(1, 2) * (beta_s * sp.asinh(beta_s / alpha_s**2) - sp.sqrt(beta_s**2 + alpha_s**4)
                                + alpha_s**2)                    # psi_alpha(beta) per coordinate (P)


def _id_q_prime():
    return sp.diff(q_expr, z) - sp.asinh(z / 2)


def _id_q_zero():
    return q_expr.subs(z, 0)


def _id_Q_grad():
    return sp.diff(Q_expr, beta_s) - sp.asinh(beta_s / (2 * alpha_s**2))


def _id_psi_grad():
    return sp.diff(psi_expr, beta_s) - sp.asinh(beta_s / alpha_s**2) / 2


def _id_psi_half_Q():
    return psi_expr - sp.Rational(1, 2) * Q_expr.subs(alpha_s, alpha_s / sp.sqrt(2))


def _id_kernel_limit():
    Qb = Q_expr.subs(beta_s, bpos)
    return sp.limit(Qb * 4 * alpha_s**2 / bpos**2, alpha_s, sp.oo) - 1


def _id_rich_limit():
    Qb = Q_expr.subs(beta_s, bpos)
    return sp.limit(Qb / (bpos * sp.log(1 / alpha_s**2)), alpha_s, 0, "+") - 1


def _id_gf_P():
    # (P) GF with G = int_0^t g: u = sqrt2 a cosh G, v = -sqrt2 a sinh G solves u' = -g v, v' = -g u, beta = a^2 sinh(-2G)
    uu = sp.sqrt(2) * alpha_s * sp.cosh(G)
    vv = -sp.sqrt(2) * alpha_s * sp.sinh(G)
    return sp.Matrix([sp.diff(uu, G) * g + g * vv, sp.diff(vv, G) * g + g * uu,
                      sp.expand_trig(uu * vv - alpha_s**2 * sp.sinh(-2 * G)).rewrite(sp.exp),
                      uu**2 - vv**2 - 2 * alpha_s**2])


def _id_gf_W():
    # (W) GF: w+ = a e^{-2G}, w- = a e^{2G} solve w+' = -2 w+ g, w-' = 2 w- g; beta = -2 a^2 sinh(4G)
    wp, wm = alpha_s * sp.exp(-2 * G), alpha_s * sp.exp(2 * G)
    return sp.Matrix([sp.diff(wp, G) * g + 2 * wp * g, sp.diff(wm, G) * g - 2 * wm * g,
                      (wp**2 - wm**2 + 2 * alpha_s**2 * sp.sinh(4 * G)).rewrite(sp.exp)])


def _id_beta_ode_P():
    # beta(theta) = a^2 sinh theta with theta' = -2g satisfies beta' = -2 sqrt(beta^2 + a^4) g
    th = sp.Symbol("theta", real=True)
    b = alpha_s**2 * sp.sinh(th)
    return sp.simplify(sp.diff(b, th) * (-2 * g) + 2 * alpha_s**2 * sp.cosh(th) * g) + \
        sp.simplify(sp.sqrt(b**2 + alpha_s**4) - alpha_s**2 * sp.cosh(th))


def _id_depth(D):
    def build():
        wp = (alpha_s ** (2 - D) + D * (D - 2) * G) ** sp.Rational(-1, D - 2)
        wm = (alpha_s ** (2 - D) - D * (D - 2) * G) ** sp.Rational(-1, D - 2)
        p = sp.Rational(D, D - 2)
        s = -D * (D - 2) * alpha_s ** (D - 2) * G
        hD = (1 - s) ** (-p) - (1 + s) ** (-p)
        return sp.Matrix([sp.diff(wp, G) + D * wp ** (D - 1), sp.diff(wm, G) - D * wm ** (D - 1),
                          sp.simplify(wp**D - wm**D - alpha_s**D * hD)])
    return build


def _id_dual_potential_D3():
    s = sp.Symbol("s", real=True)
    p = sp.Integer(3)
    H = ((1 - s) ** (1 - p) + (1 + s) ** (1 - p) - 2) / (p - 1)
    return sp.diff(H, s) - ((1 - s) ** (-p) - (1 + s) ** (-p))


def _id_gd_updates():
    u1, v1 = u - gam * g * v, v - gam * g * u
    return sp.Matrix([sp.expand(u1 + v1 - (1 - gam * g) * (u + v)), sp.expand(u1 - v1 - (1 + gam * g) * (u - v)),
                      sp.expand(u1**2 - v1**2 - (1 - gam**2 * g**2) * (u**2 - v**2))])


def _id_beta_sinh_log():
    a, b = sp.symbols("a b", positive=True)   # a = u+v, b = u-v (both > 0 while |gamma g| < 1)
    uu, vv = (a + b) / 2, (a - b) / 2
    return sp.simplify((uu * vv - (uu**2 - vv**2) / 2 * sp.sinh(sp.log(a / b))).rewrite(sp.exp))


def _id_mirror_step():
    # arcsinh(beta/alpha_k^2) = ln((u+v)/(u-v)) changes by ln((1-x)/(1+x)) = -2 artanh(x), x = gamma g
    xx = sp.Symbol("x", real=True)
    return sp.simplify((sp.log(1 - xx) - sp.log(1 + xx) + 2 * sp.atanh(xx)).rewrite(sp.log))


def _id_uv_hessian_blocks():
    # F(u, v) = ||X (u*v) - y||^2/(2n), n = d = 2 with symbolic X, y: the (u, v) Hessian is
    # [[D_v H D_v, D_v H D_u + D_g], [D_u H D_v + D_g, D_u H D_u]], H = X^T X/n, g = X^T (X beta - y)/n
    nn = 2
    Xs = sp.Matrix(2, 2, sp.symbols("x11 x12 x21 x22", real=True))
    ys = sp.Matrix(sp.symbols("y1 y2", real=True))
    us, vs = sp.symbols("u1 u2", real=True), sp.symbols("v1 v2", real=True)
    bb = sp.Matrix([us[i] * vs[i] for i in range(2)])
    res = Xs * bb - ys
    F = (res.T * res)[0] / (2 * nn)
    hess = sp.hessian(F, list(us) + list(vs))
    Hm = Xs.T * Xs / nn
    gv = Xs.T * res / nn
    Du, Dv, Dg = sp.diag(*us), sp.diag(*vs), sp.diag(*gv)
    blocks = sp.Matrix(sp.BlockMatrix([[Dv * Hm * Dv, Dv * Hm * Du + Dg], [Du * Hm * Dv + Dg, Du * Hm * Du]]))
    return (hess - blocks).applyfunc(sp.expand)


IDENTITIES = [
    Identity("q_prime", _id_q_prime, "q'(z) = arcsinh(z/2), q(z) = 2 - sqrt(4+z^2) + z asinh(z/2)", "Woodworth et al. 2020"),
    Identity("q_zero", _id_q_zero, "q(0) = 0", "Woodworth et al. 2020"),
    Identity("Q_gradient", _id_Q_grad, "dQ_alpha/dbeta = arcsinh(beta/(2 alpha^2)) (mirror map of (W))", "Woodworth et al. 2020"),
    Identity("psi_gradient", _id_psi_grad, "dpsi_alpha/dbeta = arcsinh(beta/alpha^2)/2 (mirror map of (P))", "Even et al. 2023"),
    Identity("psi_is_half_Q", _id_psi_half_Q, "psi_alpha = Q_{alpha/sqrt2}/2", "Even et al. 2023"),
    Identity("kernel_limit", _id_kernel_limit, "alpha->inf: Q_alpha 4alpha^2/beta^2 -> 1 (min-l2)", "Woodworth et al. 2020"),
    Identity("rich_limit", _id_rich_limit, "alpha->0: Q_alpha/(|beta| ln(1/alpha^2)) -> 1 (min-l1)", "Woodworth et al. 2020"),
    Identity("gf_solution_P", _id_gf_P, "(P) GF: u = sqrt2 a cosh G, v = -sqrt2 a sinh G, beta = a^2 sinh(-2G), G = int g", "Pesme et al. 2021"),
    Identity("gf_solution_W", _id_gf_W, "(W) GF: w+- = a e^{-+2G}, beta = -2a^2 sinh(4G)", "Woodworth et al. 2020"),
    Identity("beta_ode_P", _id_beta_ode_P, "beta' = -2 sqrt(beta^2 + alpha^4) g along (P) GF", "Woodworth et al. 2020"),
    Identity("depth3_solution", _id_depth(3), "D=3: w+-^{2-D} = a^{2-D} +- D(D-2)G and beta = a^D h_D(s)", "Woodworth et al. 2020"),
    Identity("depth4_solution", _id_depth(4), "D=4: w+-^{2-D} = a^{2-D} +- D(D-2)G and beta = a^D h_D(s)", "Woodworth et al. 2020"),
    Identity("depth3_dual_potential", _id_dual_potential_D3, "H'(s) = h_3(s) for the depth-3 dual potential", "Woodworth et al. 2020"),
    Identity("gd_multiplicative", _id_gd_updates, "GD/SGD: (u+v)' = (1-gg)(u+v), (u-v)' = (1+gg)(u-v), u'^2-v'^2 = (1-g^2g^2)(u^2-v^2)", "Even et al. 2023"),
    Identity("beta_from_uv", _id_beta_sinh_log, "beta = (u^2-v^2)/2 sinh(ln((u+v)/(u-v)))", "Even et al. 2023"),
    Identity("uv_hessian_blocks", _id_uv_hessian_blocks, "(u,v) Hessian of L(u*v) = [[D_v H D_v, D_v H D_u + D_g], [D_u H D_v + D_g, D_u H D_u]]", "Even et al. 2023"),
    Identity("mirror_step", _id_mirror_step, "ln((1-x)/(1+x)) = -2 artanh(x): exact mirror step of GD/SGD", "Even et al. 2023"),
]

# ---------------------------------------------------------------------------------------------------------
# closed forms in jax.numpy (jit/vmap/grad-safe)


def q(zz):
    """q(z) = 2 - sqrt(4+z^2) + z asinh(z/2) (Woodworth et al. 2020); elementwise."""
    zz = jnp.asarray(zz)
    return 2.0 - jnp.sqrt(4.0 + zz**2) + zz * jnp.arcsinh(zz / 2.0)


def potential(beta, alpha):
    """Q_alpha(beta) = alpha^2 sum_i q(beta_i/alpha^2) for (W) beta = w+^2 - w-^2 (Woodworth 2020); beta (d,) -> scalar."""
    beta = jnp.asarray(beta)
    a2 = jnp.asarray(alpha) ** 2
    return jnp.sum(a2 * q(beta / a2))


def psi(beta, alpha):
    """Hyperbolic entropy psi_alpha(beta) = 1/2 sum[beta asinh(beta/a^2) - sqrt(beta^2+a^4) + a^2] for (P) (Even 2023)."""
    beta = jnp.asarray(beta)
    a2 = jnp.asarray(alpha) ** 2
    return 0.5 * jnp.sum(beta * jnp.arcsinh(beta / a2) - jnp.sqrt(beta**2 + a2**2) + a2)


def h_depth(s, D):
    """h_D(s) = (1-s)^{-D/(D-2)} - (1+s)^{-D/(D-2)}: depth-D GF beta = alpha^D h_D(s), |s| < 1 (Woodworth 2020)."""
    p = D / (D - 2.0)
    return (1.0 - s) ** (-p) - (1.0 + s) ** (-p)


def H_depth(s, D):
    """Dual potential H_D(s) = [(1-s)^{1-p} + (1+s)^{1-p} - 2]/(p-1), p = D/(D-2), H' = h_D."""
    p = D / (D - 2.0)
    return ((1.0 - s) ** (1.0 - p) + (1.0 + s) ** (1.0 - p) - 2.0) / (p - 1.0)


def beta_mirror_P(R, X, alpha):
    """Mirror-flow closed form (P): beta = alpha^2 sinh(-2 X^T R/n), R = int_0^t (X beta - y) (n,), X (n,d)."""
    n = X.shape[0]
    return alpha**2 * jnp.sinh(-2.0 * (X.T @ R) / n)


def beta_mirror_W(R, X, alpha):
    """Mirror-flow closed form (W): beta = -2 alpha^2 sinh(4 X^T R/n), R = int_0^t (X beta - y)."""
    n = X.shape[0]
    return -2.0 * alpha**2 * jnp.sinh(4.0 * (X.T @ R) / n)


def reduced_ode_rhs(R, X, y, alpha, parametrisation="P"):
    """Reduced exact n-dim ODE dR/dt = X beta(R) - y, R(0) = 0 (spec A.3.1); numpy arrays."""
    n = X.shape[0]
    th = (X.T @ R) / n
    beta = alpha**2 * np.sinh(-2.0 * th) if parametrisation == "P" else -2.0 * alpha**2 * np.sinh(4.0 * th)
    return X @ beta - y


def reduced_flow(X, y, alpha, ts, parametrisation="P", rtol=1e-12, atol=1e-14):
    """beta(t) at times ts from the reduced n-dim ODE (scipy LSODA/Radau); returns (len(ts), d) numpy array."""
    from scipy.integrate import solve_ivp

    X = np.asarray(X, float)
    y = np.asarray(y, float)
    ts = np.asarray(ts, float)
    if np.any(ts < 0):
        raise ValueError("ts must be non-negative")
    n = X.shape[0]
    sol = solve_ivp(lambda t, R: reduced_ode_rhs(R, X, y, alpha, parametrisation), (0.0, float(ts.max())),
                    np.zeros(n), method="Radau", t_eval=ts, rtol=rtol, atol=atol,
                    jac=lambda t, R: _reduced_jac(R, X, alpha, parametrisation))
    if not sol.success:
        raise RuntimeError(f"reduced ODE failed: {sol.message}")
    th = (X.T @ sol.y) / n  # (d, T)
    if parametrisation == "P":
        return (alpha**2 * np.sinh(-2.0 * th)).T
    return (-2.0 * alpha**2 * np.sinh(4.0 * th)).T


def _reduced_jac(R, X, alpha, parametrisation):
    n = X.shape[0]
    th = (X.T @ R) / n
    if parametrisation == "P":
        dbeta = -2.0 * alpha**2 * np.cosh(-2.0 * th) / n
    else:
        dbeta = -8.0 * alpha**2 * np.cosh(4.0 * th) / n
    return (X * dbeta) @ X.T


# ---------------------------------------------------------------------------------------------------------
# exact solvers (numpy): dual Newton for the mirror limits, LP for min-l1


def _check_Xy(X, y):
    X = np.asarray(X, dtype=float)
    y = np.asarray(y, dtype=float)
    if X.ndim != 2:
        raise ValueError(f"X must be (n, d), got shape {X.shape}")
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must have shape ({X.shape[0]},), got {y.shape}")
    if not (np.all(np.isfinite(X)) and np.all(np.isfinite(y))):
        raise ValueError("X and y must be finite")
    return X, y


def _damped_newton(f, grad_hess, nu0, tol, max_iter):
    """Damped Newton on a convex dual f; Armijo on f, or (near the optimum, where f is at round-off) on ||grad||."""
    nu = nu0
    fv = f(nu)
    gr, hs, res = grad_hess(nu)
    for _ in range(max_iter):
        if res <= tol:
            break
        step = np.linalg.solve(hs, gr)
        dec = gr @ step
        t, accepted = 1.0, False
        while t >= 1e-20:
            cand = nu - t * step
            fc = f(cand)
            if np.isfinite(fc):
                if fc <= fv - 0.25 * t * dec:
                    accepted = True
                    break
                gc, hc, rc = grad_hess(cand)
                if rc < (1.0 - 0.25 * t) * res:
                    accepted = True
                    break
            t *= 0.5
        if not accepted:  # round-off floor reached
            break
        nu, fv = cand, fc
        gr, hs, res = grad_hess(nu)
    return nu, res


def mirror_limit(X, y, alpha, phi=None, parametrisation="W", tol=1e-13, max_iter=500):
    """argmin_{X beta = y} Q(beta) - <phi, beta>/2 for the hyperbolic entropy, by dual Newton (spec A.3.2/A.3.4).

    (W): Q_alpha (Woodworth 2020), beta = 2 alpha^2 sinh(X^T nu); (P): psi_alpha (Even 2023), beta = alpha^2
    sinh(X^T nu + phi). alpha: scalar or (d,); X (n,d), y (n,) -> beta (d,). Returns beta (numpy)."""
    X, y = _check_Xy(X, y)
    alpha = np.broadcast_to(np.asarray(alpha, float), (X.shape[1],))
    if not np.all(alpha > 0):
        raise ValueError("alpha must be positive")
    if parametrisation not in ("W", "P"):
        raise ValueError(f"parametrisation must be 'W' or 'P', got {parametrisation!r}")
    a = (2.0 if parametrisation == "W" else 1.0) * alpha**2
    ph = np.zeros(X.shape[1]) if phi is None else np.asarray(phi, float)
    if parametrisation == "W" and phi is not None:
        raise ValueError("phi (tilt) is only defined for parametrisation 'P'")
    scale = max(1.0, float(np.linalg.norm(y)))
    # dual: min_nu sum a cosh(X^T nu + phi) - y^T nu; shift by log(a) keeps cosh from overflowing in f
    def f(nu):
        zz = X.T @ nu + ph
        with np.errstate(over="ignore"):
            return float(np.sum(a * np.cosh(zz)) - y @ nu)

    def grad_hess(nu):
        zz = X.T @ nu + ph
        with np.errstate(over="ignore", invalid="ignore"):
            beta = a * np.sinh(zz)
            r = X @ beta - y
            res = float(np.linalg.norm(r)) / scale if np.all(np.isfinite(r)) else np.inf
        return r, (X * (a * np.cosh(zz))) @ X.T, res

    nu, res = _damped_newton(f, grad_hess, np.zeros(X.shape[0]), tol, max_iter)
    return a * np.sinh(X.T @ nu + ph)


def depth_limit(X, y, alpha, D, tol=1e-13, max_iter=500):
    """Depth-D GF limit argmin_{X beta = y} alpha^D sum q_D(beta/alpha^D) via dual Newton: beta = alpha^D h_D(X^T nu).

    (Woodworth et al. 2020, spec A.3.3); alpha scalar > 0, D >= 3; X (n,d), y (n,) -> beta (d,)."""
    X, y = _check_Xy(X, y)
    if not (isinstance(D, (int, np.integer)) and D >= 3):
        raise ValueError(f"D must be an integer >= 3, got {D!r}")
    if not float(alpha) > 0:
        raise ValueError("alpha must be positive")
    p = D / (D - 2.0)
    aD = float(alpha) ** D
    scale = max(1.0, float(np.linalg.norm(y)))

    def f(nu):
        s = X.T @ nu
        if np.any(np.abs(s) >= 1):
            return np.inf
        return float(aD * np.sum(((1 - s) ** (1 - p) + (1 + s) ** (1 - p) - 2) / (p - 1)) - y @ nu)

    def grad_hess(nu):
        s = X.T @ nu
        beta = aD * ((1 - s) ** (-p) - (1 + s) ** (-p))
        dh = aD * p * ((1 - s) ** (-p - 1) + (1 + s) ** (-p - 1))
        r = X @ beta - y
        return r, (X * dh) @ X.T, float(np.linalg.norm(r)) / scale

    nu, res = _damped_newton(f, grad_hess, np.zeros(X.shape[0]), tol, max_iter)
    s = X.T @ nu
    return aD * ((1 - s) ** (-p) - (1 + s) ** (-p))


def min_l1_interpolator(X, y):
    """argmin ||beta||_1 s.t. X beta = y (LP, scipy HiGHS); the alpha -> 0 limit (Woodworth 2020)."""
    from scipy.optimize import linprog

    X, y = _check_Xy(X, y)
    d = X.shape[1]
    res = linprog(np.ones(2 * d), A_eq=np.hstack([X, -X]), b_eq=y, bounds=(0, None), method="highs",
                  options={"primal_feasibility_tolerance": 1e-10, "dual_feasibility_tolerance": 1e-10})
    if not res.success:
        raise RuntimeError(f"min-l1 LP failed: {res.message}")
    return res.x[:d] - res.x[d:]


def l1_gap_bound(beta_alpha, beta_l1, alpha):
    """Upper bound on ||beta_alpha||_1 - ||beta_l1||_1 for the (W) limit beta_alpha = argmin Q_alpha (Woodworth 2020):
    [sum |b1|(ln(|b1| + a^2) - 1) - sum |b|(ln|b| - 1) + 2 d a^2] / ln(1/a^2), from Q_alpha(b_alpha) <= Q_alpha(b_l1)
    and z ln z - z <= q(z) <= z ln(z+1) - z + 2 (asinh(z/2) in [ln z, ln(z+1)], sqrt(4+z^2) in [z, z+2], z >= 0)."""
    b = np.abs(np.asarray(beta_alpha, float))
    b1 = np.abs(np.asarray(beta_l1, float))
    a2 = float(alpha) ** 2
    if not a2 > 0:
        raise ValueError("alpha must be positive")
    xlogx = np.where(b > 0, b * np.log(np.where(b > 0, b, 1.0)), 0.0)
    up = np.sum(np.where(b1 > 0, b1 * (np.log(b1 + a2) - 1.0), 0.0)) + 2 * b.size * a2
    return float((up - np.sum(xlogx - b)) / np.log(1.0 / a2))


def min_l2_interpolator(X, y):
    """argmin ||beta||_2 s.t. X beta = y = X^+ y; the alpha -> inf (kernel) limit."""
    X, y = _check_Xy(X, y)
    return np.linalg.lstsq(X, y, rcond=None)[0]


# ---------------------------------------------------------------------------------------------------------
# Even et al. 2023 / Pesme et al. 2021 / Nacson et al. 2022


def alpha_inf_from_log_products(alpha, sum_log_1m):
    """alpha_inf = alpha exp(1/2 sum_l ln(1 - gamma^2 g_l^2)) = alpha exp(-Gain/2) (Even et al. 2023); (d,)."""
    return alpha * jnp.exp(0.5 * jnp.asarray(sum_log_1m))


def phi_inf_from_sums(sum_atanh_minus_lin):
    """Tilt phi_inf = -2 sum_l (artanh(gamma g_l) - gamma g_l) (Even et al. 2023, exact); (d,)."""
    return -2.0 * jnp.asarray(sum_atanh_minus_lin)


def pesme_log_alpha_ratio(gamma, X, int_loss):
    """ln(alpha_inf/alpha) ~= -gamma diag(X^T X/n) int_0^inf L dt (Pesme et al. 2021, our conventions; approximate)."""
    X = jnp.asarray(X)
    return -gamma * jnp.sum(X**2, axis=0) / X.shape[0] * int_loss


def sharpness_at_interpolator(X, beta, alpha):
    """lambda_max of grad^2 F at an interpolator of (P) with u^2 - v^2 = 2 alpha^2: lambda_max(X diag(2 sqrt(beta^2+alpha^4)) X^T/n)."""
    X = np.asarray(X, float)
    c = 2.0 * np.sqrt(np.asarray(beta) ** 2 + np.asarray(alpha) ** 4)
    return float(np.linalg.eigvalsh((X * c) @ X.T / X.shape[0])[-1])


def stability_weighted_l1(X, beta):
    """Nacson et al. 2022 weighted l1: sum_i xbar_i^2 |beta_i| with xbar = X^T 1/n; stability gives <= 1/gamma."""
    xbar = np.asarray(X, float).mean(axis=0)
    return float(np.sum(xbar**2 * np.abs(beta)))


def saddle_to_saddle(X, y, max_jumps=100, tol=1e-12):
    """Pesme & Flammarion 2023 alpha->0 limit of (P) GF in time tau = t/ln(1/alpha): jump times, saddles, losses.

    Returns (taus (K,), betas (K, d), losses (K,)): beta = betas[k] on [taus[k], taus[k+1]); taus[0] = 0."""
    from scipy.optimize import lsq_linear

    X, y = _check_Xy(X, y)
    n, d = X.shape
    S = np.zeros(d)
    beta = np.zeros(d)
    tau = 0.0
    taus, betas, losses = [0.0], [beta.copy()], [float(np.sum((X @ beta - y) ** 2) / (2 * n))]
    for _ in range(max_jumps):
        gr = X.T @ (X @ beta - y) / n
        if losses[-1] <= tol**2:
            break
        target = -np.sign(gr)
        active = (np.abs(gr) > tol) & ~(np.isclose(np.abs(S), 1.0, atol=1e-12) & (np.sign(S) == target))
        if not np.any(active):
            break
        dt = np.where(active, (target - S) / np.where(active, -gr, 1.0), np.inf)
        k = int(np.argmin(dt))
        delta = float(dt[k])
        tau += delta
        S = np.clip(S - delta * gr, -1.0, 1.0)
        S[k] = target[k]
        sat = np.isclose(np.abs(S), 1.0, atol=1e-10)
        lb = np.where(sat & (S > 0), 0.0, np.where(sat, -np.inf, 0.0))
        ub = np.where(sat & (S < 0), 0.0, np.where(sat, np.inf, 0.0))
        idx = np.flatnonzero(sat)
        beta = np.zeros(d)
        if idx.size:
            res = lsq_linear(X[:, idx], y, bounds=(lb[idx], ub[idx]), method="bvls", tol=1e-15)
            beta[idx] = res.x
        taus.append(tau)
        betas.append(beta.copy())
        losses.append(float(np.sum((X @ beta - y) ** 2) / (2 * n)))
    return np.array(taus), np.array(betas), np.array(losses)


# ---------------------------------------------------------------------------------------------------------
# linear stability of GD along the gradient-flow path (GD phase diagram)


def uv_hessian_blocks(X, y, u, v):
    """(u, v) Hessian of F = L(u*v) from its blocks [[D_v H D_v, D_v H D_u + D_g], [., D_u H D_u]], H = X^T X/n,
    g = X^T (X u*v - y)/n (sympy identity `uv_hessian_blocks`); X (n,d), y (n,), u, v (d,) -> (2d, 2d) numpy."""
    X, y = _check_Xy(X, y)
    u, v = np.asarray(u, float), np.asarray(v, float)
    if u.shape != (X.shape[1],) or v.shape != (X.shape[1],):
        raise ValueError(f"u and v must have shape ({X.shape[1]},), got {u.shape}, {v.shape}")
    n = X.shape[0]
    H = X.T @ X / n
    g = X.T @ (X @ (u * v) - y) / n
    Huv = v[:, None] * H * u[None, :] + np.diag(g)
    return np.block([[v[:, None] * H * v[None, :], Huv], [Huv.T, u[:, None] * H * u[None, :]]])


def uv_from_beta(beta, alpha):
    """(P) weights on the GF path (u^2 - v^2 = 2 alpha^2, u*v = beta, u > 0): u^2 = alpha^2 + sqrt(alpha^4 + beta^2),
    v = beta/u; beta (..., d) -> (u, v)."""
    beta = np.asarray(beta, float)
    u = np.sqrt(alpha**2 + np.sqrt(alpha**4 + beta**2))
    return u, beta / u


def gf_path_sharpness(X, y, alpha, ts):
    """lambda_max of the (u, v) Hessian along the (P) gradient flow from u = sqrt2 alpha, v = 0 at times ts
    (reduced mirror ODE + block Hessian); linear stability of GD along the path needs gamma lambda_max < 2. -> (len(ts),)."""
    X, y = _check_Xy(X, y)
    if not float(alpha) > 0:
        raise ValueError("alpha must be positive")
    betas = reduced_flow(X, y, float(alpha), ts, parametrisation="P")
    out = []
    for b in betas:
        uu, vv = uv_from_beta(b, float(alpha))
        out.append(np.linalg.eigvalsh(uv_hessian_blocks(X, y, uu, vv))[-1])
    return np.asarray(out)
