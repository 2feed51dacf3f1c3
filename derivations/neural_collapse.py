"""Unconstrained features model (UFM): closed-form global minimisers, critical points and rates (sympy-checked).

MSE UFM (Zhou et al. 2022; Tirer & Bruna 2022), with n = K N samples, Y = I_K (x) 1_N^T:
    L = 1/(2n) ||W H + b 1^T - Y||_F^2 + lam_W/2 ||W||^2 + lam_H/2 ||H||^2 + lam_b/2 ||b||^2.
Derivation (checked below): lam_W/2||W||^2 + lam_H/2||H||^2 >= sqrt(lam_W lam_H) ||W H||_* with equality iff
balanced, so the problem is convex in (Z' = W H, b) (rank <= d); by class/sample permutation symmetry and strict
convexity the minimiser is Z' = Z (x) 1_N^T with Z = a (I - J) + c J, J = 1 1^T / K, b = beta 1, and the reduced
objective is, with g = sqrt(N lam_W lam_H),
    F(a, c, beta) = [ (K-1)(a-1)^2 + (c + K beta - 1)^2 ] / (2K) + g [ (K-1) a + c ] + lam_b K beta^2 / 2.
  * ETF part: a = (1 - K g)_+  (threshold K sqrt(N lam_W lam_H) = 1 for all three bias variants);
  * no bias: c = a, beta = 0 (orthogonal frame, needs d >= K);
  * unregularised bias (lam_b = 0): c = 0, beta = 1/K (simplex ETF, d >= K-1);
  * lam_b > 0: c = 1 - K g (1 + 1/lam_b), beta = g/lam_b if that c > 0, else c = 0, beta = 1/(K (1 + lam_b)).
Balanced factors: W W^T = kappa Z, M^T M = Z / kappa (M = class means, d x K), kappa = sqrt(N lam_H / lam_W); so
||W||_F^2 = kappa tr Z, ||H||_F^2 = N tr Z / kappa, ||b|| = sqrt(K) beta.

Cross-entropy UFM (Zhu et al. 2021): ETF minimiser with per-class logit margin scale A = ||w_k|| ||h_k|| solving
g'(A) = 0 for g(A) = log(1 + (K-1) exp(-K A/(K-1))) + K g A, i.e. A = (K-1)/K log((1 - (K-1) g)/g) (zero for K g >= 1).

Everything exported is a plain jax.numpy function (jit/vmap/grad-safe in the lam's; K, N, d are Python ints).
"""

from __future__ import annotations

import numpy as np
import jax.numpy as jnp
import sympy as sp

from ._checks import concrete
from .codegen import Identity, to_jax

__all__ = [
    "IDENTITIES",
    "mse_minimizer",
    "mse_minimizer_norms",
    "mse_minimizer_gram",
    "mse_min_loss",
    "mse_threshold_lambda",
    "zero_point_hessian_min_eig",
    "partial_critical_point",
    "nc1_contraction",
    "ce_minimizer",
    "mse_imbalanced_class_norms",
    "minority_threshold_ratio",
    "extended_ufm_minimizer",
    "renormalized_snr",
    "central_path_loss_snr",
    "ridge_ls_classifier",
    "adiabatic_deviation",
]

# ----------------------------------------------------------------------------------------------------------------
# symbols and reduced objectives
K_, N_, n_ = sp.symbols("K N n", positive=True)
lW, lH, lb = sp.symbols("lambda_W lambda_H lambda_b", positive=True)
g_ = sp.symbols("g", positive=True)  # g = sqrt(N lam_W lam_H)
a_, c_, beta_, A_, s_, alpha_ = sp.symbols("a c beta A s alpha", real=True)
nk_ = sp.symbols("n_k", positive=True)

F_reduced = ((K_ - 1) * (a_ - 1) ** 2 + (c_ + K_ * beta_ - 1) ** 2) / (2 * K_) + g_ * ((K_ - 1) * a_ + c_) \
    + lb * K_ * beta_ ** 2 / 2
F_nobias = ((a_ - 1) ** 2 * K_) / (2 * K_) + g_ * K_ * a_  # Z = a I_K, no b

a_star = 1 - K_ * g_
c_on = 1 - K_ * g_ * (1 + 1 / lb)
beta_on = g_ / lb
beta_off = 1 / (K_ * (1 + lb))
g_switch = lb / (K_ * (1 + lb))  # where the global-mean direction c switches off (lam_b > 0)

# zero critical point: Hessian 2x2 block per singular mode of Y/(KN), q = 1/(K sqrt N)
q_ = 1 / (K_ * sp.sqrt(N_))
mu_minus = (lW + lH) / 2 - sp.sqrt(((lW - lH) / 2) ** 2 + q_ ** 2)
mu_plus = (lW + lH) / 2 + sp.sqrt(((lW - lH) / 2) ** 2 + q_ ** 2)

# extended UFM (Tirer & Bruna 2022), three factors, no bias: per mode f(s) = (s-1)^2/(2K) + (3/2)(q/K) s^(2/3),
# q = K (N lam_W2 lam_W1 lam_H)^(1/3); with s = t^3 stationarity is the quartic t^4 - t + q = 0
t_, q_, l2_, l1_ = sp.symbols("t q lambda_2 lambda_1", positive=True)
f_ext = (t_ ** 3 - 1) ** 2 / (2 * K_) + sp.Rational(3, 2) * (q_ / K_) * t_ ** 2
quartic = t_ ** 4 - t_ + q_
q_crit = sp.Integer(2) ** sp.Rational(-4, 3)
t_crit = sp.Integer(2) ** sp.Rational(-1, 3)
q_spin = sp.Rational(3, 4) * sp.Integer(4) ** sp.Rational(-1, 3)  # spinodal: the non-zero branch disappears
t_spin = sp.Integer(4) ** sp.Rational(-1, 3)

# cross-entropy, ETF reduced objective
g_ce = sp.log(1 + (K_ - 1) * sp.exp(-K_ * A_ / (K_ - 1))) + K_ * g_ * A_
A_star_ce = (K_ - 1) / K_ * sp.log((1 - (K_ - 1) * g_) / g_)


def _etf_ce_identity(K: int):
    """sum_j exp(z_j - z_k) for logits of an explicit K-simplex ETF equals 1 + (K-1) exp(-K A/(K-1))."""
    al, et = sp.symbols("alpha eta", positive=True)
    E = sp.eye(K) - sp.ones(K, K) / K  # columns: centred one-hot, a simplex ETF in R^K
    V = E / sp.sqrt(sp.Rational(K - 1, K))  # unit columns
    Wm = al * V.T  # rows w_j = alpha v_j
    h = et * V[:, 0]  # class-0 mean
    z = Wm * h
    lhs = sum(sp.exp(z[j] - z[0]) for j in range(K))
    rhs = 1 + (K - 1) * sp.exp(-sp.Integer(K) * al * et / (K - 1))
    return sp.simplify(lhs - rhs)


def _three_factor_balance():
    sig = sp.Symbol("sigma", positive=True)
    c = (l2_ * l1_ * lH) ** sp.Rational(1, 3) * sig ** sp.Rational(2, 3)
    a2, b2, e2 = c / l2_, c / l1_, c / lH
    return sp.Matrix([sp.simplify(a2 * b2 * e2 - sig ** 2),
                      sp.simplify((l2_ * a2 + l1_ * b2 + lH * e2) / 2 - sp.Rational(3, 2) * c)])


def _small_ufm(Kc=2, Nc=2, dc=2, bias=True):
    W = sp.Matrix(Kc, dc, lambda i, j: sp.Symbol(f"w{i}{j}", real=True))
    H = sp.Matrix(dc, Kc * Nc, lambda i, j: sp.Symbol(f"h{i}_{j}", real=True))
    b = sp.Matrix(Kc, 1, lambda i, j: sp.Symbol(f"b{i}", real=True)) if bias else sp.zeros(Kc, 1)
    Y = sp.Matrix(Kc, Kc * Nc, lambda i, j: 1 if j // Nc == i else 0)
    R = W * H + b * sp.ones(1, Kc * Nc) - Y
    L = sum(x ** 2 for x in R) / (2 * Kc * Nc) + lW / 2 * sum(x ** 2 for x in W) + lH / 2 * sum(x ** 2 for x in H) \
        + lb / 2 * sum(x ** 2 for x in b)
    return W, H, b, Y, L


def _within_class_gradient_identity():
    """P_within(dL/dH) = (W^T W / n + lam_H) E exactly, E = H minus its class means (drives NC1)."""
    Kc, Nc, dc = 2, 2, 2
    W, H, b, Y, L = _small_ufm(Kc, Nc, dc, bias=True)
    G = sp.Matrix(dc, Kc * Nc, lambda i, j: sp.diff(L, H[i, j]))
    P = sp.Matrix(Kc * Nc, Kc * Nc, lambda i, j: (1 if i == j else 0) - (sp.Rational(1, Nc) if i // Nc == j // Nc else 0))
    E = H * P
    return sp.expand(G * P - (W.T * W / (Kc * Nc) + lH * sp.eye(dc)) * E)


def _zero_hessian_identity():
    """The Hessian of the explicit (K,N,d)=(2,2,2) no-bias UFM loss at W=H=0 has eigenvector (mode 1) with eigenvalue mu_-."""
    Kc, Nc, dc = 2, 2, 2
    W, H, b, Y, L = _small_ufm(Kc, Nc, dc, bias=False)
    params = list(W) + list(H)
    Hs = sp.hessian(L, params).subs({p: 0 for p in params})
    q = 1 / (Kc * sp.sqrt(Nc))
    mu = ((lW + lH) / 2 - sp.sqrt(((lW - lH) / 2) ** 2 + q ** 2))
    # dW = x e_0 u_0^T, dH = y u_0 (e_0 (x) 1_N)^T / sqrt(N); (x, y) eigvector of [[lW, -q], [-q, lH]]
    x, y = q, lW - mu
    dW = sp.zeros(Kc, dc)
    dW[0, 0] = x
    dH = sp.zeros(dc, Kc * Nc)
    for j in range(Nc):
        dH[0, j] = y / sp.sqrt(Nc)
    v = sp.Matrix(list(dW) + list(dH))
    return sp.simplify(Hs * v - mu * v)


IDENTITIES: list[Identity] = [
    Identity(
        "nuclear_norm_balance",
        lambda: sp.Matrix([
            sp.diff(lW * alpha_ ** 2 / 2 + N_ * lH * s_ ** 2 / (2 * alpha_ ** 2), alpha_).subs(
                alpha_, sp.sqrt(s_ * sp.sqrt(N_ * lH / lW))),
            (lW * alpha_ ** 2 / 2 + N_ * lH * s_ ** 2 / (2 * alpha_ ** 2)).subs(
                alpha_, sp.sqrt(s_ * sp.sqrt(N_ * lH / lW))) - sp.sqrt(N_ * lW * lH) * s_,
        ]).subs(s_, sp.Symbol("s", positive=True)),
        "min over balanced factors of lam_W a^2/2 + N lam_H m^2/2 with a m = s is sqrt(N lam_W lam_H) s "
        "at a^2 = s sqrt(N lam_H/lam_W) (variational nuclear norm)",
        "Zhou et al. 2022",
    ),
    Identity(
        "per_singular_value_reduction",
        lambda: (sp.sqrt(N_) * a_ - sp.sqrt(N_)) ** 2 / (2 * K_ * N_) + sp.sqrt(lW * lH) * sp.sqrt(N_) * a_
        - ((a_ - 1) ** 2 / (2 * K_) + sp.sqrt(N_ * lW * lH) * a_),
        "a singular mode sqrt(N) of Y with Z' singular value sqrt(N) a costs (a-1)^2/(2K) + g a, g = sqrt(N lam_W lam_H)",
        "Tirer & Bruna 2022",
    ),
    Identity(
        "etf_part_stationary",
        lambda: sp.diff(F_reduced, a_).subs(a_, a_star),
        "dF/da = 0 at a = 1 - K g (simplex-ETF singular value below the threshold K g = 1)",
        "Zhou et al. 2022",
    ),
    Identity(
        "nobias_stationary",
        lambda: sp.diff(F_nobias, a_).subs(a_, a_star),
        "no bias: Z = a I_K with a = 1 - K g (orthogonal frame)",
        "Tirer & Bruna 2022",
    ),
    Identity(
        "reg_bias_on_branch_stationary",
        lambda: sp.Matrix([sp.diff(F_reduced, c_), sp.diff(F_reduced, beta_)]).subs({c_: c_on, beta_: beta_on}),
        "lam_b > 0, global-mean direction alive: c = 1 - K g (1 + 1/lam_b), beta = g / lam_b",
        "Zhou et al. 2022",
    ),
    Identity(
        "reg_bias_off_branch_stationary",
        lambda: sp.diff(F_reduced, beta_).subs({c_: 0, beta_: beta_off}),
        "c = 0 branch: beta = 1/(K (1 + lam_b)); lam_b = 0 gives the unregularised bias b = 1/K",
        "Zhou et al. 2022",
    ),
    Identity(
        "reg_bias_branches_continuous",
        lambda: sp.Matrix([c_on.subs(g_, g_switch), (beta_on - beta_off).subs(g_, g_switch),
                           sp.diff(F_reduced, c_).subs({c_: 0, beta_: beta_off}).subs(g_, g_switch)]),
        "at g = lam_b/(K(1+lam_b)) the c-branch meets c = 0 and the KKT condition dF/dc >= 0 at c = 0 is tight",
        "Zhou et al. 2022",
    ),
    Identity(
        "zero_point_eigs",
        lambda: sp.Matrix([mu_minus * mu_plus - (lW * lH - 1 / (K_ ** 2 * N_)), mu_minus + mu_plus - lW - lH]),
        "Hessian at W=H=0 per mode: eigenvalues of [[lam_W, -q], [-q, lam_H]], q = 1/(K sqrt N); mu_- < 0 iff K g < 1",
        "Zhou et al. 2022",
    ),
    Identity(
        "zero_point_hessian_explicit",
        _zero_hessian_identity,
        "explicit (K,N,d) = (2,2,2) loss: Hessian at 0 times the predicted eigenvector equals mu_- times it",
        "Zhou et al. 2022",
    ),
    Identity(
        "within_class_gradient",
        _within_class_gradient_identity,
        "explicit (2,2,2) loss with bias: within-class part of dL/dH is (W^T W/(KN) + lam_H) E (NC1 dynamics)",
        "Han, Papyan & Donoho 2022",
    ),
    Identity(
        "ce_etf_logits_K3",
        lambda: _etf_ce_identity(3),
        "K=3 simplex ETF: sum_j exp(z_j - z_k) = 1 + (K-1) exp(-K A/(K-1)), A = ||w|| ||h||",
        "Zhu et al. 2021",
    ),
    Identity(
        "ce_etf_logits_K4",
        lambda: _etf_ce_identity(4),
        "K=4 simplex ETF logits identity",
        "Zhu et al. 2021",
    ),
    Identity(
        "ce_scale_stationary",
        lambda: sp.diff(g_ce, A_).subs(A_, A_star_ce),
        "CE ETF scale: g'(A) = 0 at A = (K-1)/K log((1-(K-1)g)/g)",
        "Zhu et al. 2021",
    ),
    Identity(
        "three_factor_balance",
        lambda: _three_factor_balance(),
        "three factors a b e = sigma with lam_2 a^2 = lam_1 b^2 = lam_H e^2: penalty (lam_2 a^2 + lam_1 b^2 + lam_H e^2)/2 "
        "= (3/2)(lam_2 lam_1 lam_H)^(1/3) sigma^(2/3) (Schatten-2/3 quasi-norm; AM-GM equality)",
        "Tirer & Bruna 2022",
    ),
    Identity(
        "extended_mode_stationary",
        lambda: sp.diff(f_ext, t_) - 3 * t_ / K_ * quartic,
        "d/dt f(s = t^3) = (3t/K)(t^4 - t + q): stationary modes solve the quartic t^4 - t + q = 0",
        "Tirer & Bruna 2022",
    ),
    Identity(
        "extended_threshold",
        lambda: sp.Matrix([quartic.subs({t_: t_crit, q_: q_crit}),
                           (f_ext - f_ext.subs(t_, 0)).subs({t_: t_crit, q_: q_crit})]),
        "first-order threshold: the non-zero stationary point ties with 0 at q* = 2^(-4/3), t* = 2^(-1/3) (s* = 1/2)",
        "Tirer & Bruna 2022",
    ),
    Identity(
        "extended_spinodal",
        lambda: sp.Matrix([quartic.subs({t_: t_spin, q_: q_spin}), sp.diff(quartic, t_).subs(t_, t_spin)]),
        "the non-zero (metastable for q > q*) branch exists up to the spinodal q_sp = (3/4) 4^(-1/3), t = 4^(-1/3), "
        "where the quartic has a double root",
        "Tirer & Bruna 2022",
    ),
    Identity(
        "imbalanced_prox",
        lambda: sp.diff((s_ - sp.sqrt(nk_)) ** 2 / (2 * n_) + sp.sqrt(lW * lH) * s_, s_).subs(
            s_, sp.sqrt(nk_) - n_ * sp.sqrt(lW * lH)),
        "imbalanced no-bias MSE UFM: class-k singular value s_k = sqrt(n_k) - n sqrt(lam_W lam_H) (zero below)",
        "Fang et al. 2021; Dang et al. 2023",
    ),
]

# ----------------------------------------------------------------------------------------------------------------
# jax functions generated from the checked expressions
_args = (K_, g_, lb)
_a_fn = to_jax(a_star, (K_, g_))
_c_on_fn = to_jax(c_on, _args)
_beta_on_fn = to_jax(beta_on, (g_, lb))
_beta_off_fn = to_jax(beta_off, (K_, lb))
_F_fn = to_jax(F_reduced, (a_, c_, beta_, K_, g_, lb))
_mu_minus_fn = to_jax(mu_minus, (K_, N_, lW, lH))
_A_ce_fn = to_jax(A_star_ce, (K_, g_))
_g_ce_fn = to_jax(g_ce, (A_, K_, g_))


def _check_int(name, v, lo):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < lo:
        raise ValueError(f"{name} must be an int >= {lo}, got {v!r}")
    return int(v)


def _check_lam(name, v, allow_zero=False):
    try:
        arr = np.asarray(v, dtype=float)
    except Exception:  # traced values: cannot be checked eagerly
        return
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {v!r}")
    if np.any(arr < 0) or (not allow_zero and np.any(arr == 0)):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {v!r}")


def mse_minimizer(K: int, N: int, lam_W, lam_H, lam_b=None) -> dict:
    """Reduced global minimiser of the MSE UFM: Z = a(I-J) + cJ, b = beta 1 (Zhou et al. 2022); scalars or arrays.

    lam_b=None: no bias (c = a); lam_b=0: unregularised bias. Returns a, c, beta, g = sqrt(N lam_W lam_H),
    kappa = sqrt(N lam_H/lam_W) (W W^T = kappa Z) and the minimal loss.
    """
    K = _check_int("K", K, 2)
    N = _check_int("N", N, 1)
    _check_lam("lam_W", lam_W)
    _check_lam("lam_H", lam_H)
    if lam_b is not None:
        _check_lam("lam_b", lam_b, allow_zero=True)
    lam_W = jnp.asarray(lam_W, dtype=float)
    lam_H = jnp.asarray(lam_H, dtype=float)
    g = jnp.sqrt(N * lam_W * lam_H)
    a = jnp.maximum(_a_fn(K, g), 0.0)
    if lam_b is None:
        c, beta = a, jnp.zeros_like(a)
        lb_val = jnp.zeros_like(a)
    else:
        lb_val = jnp.asarray(lam_b, dtype=float) * jnp.ones_like(a)
        safe = jnp.where(lb_val > 0, lb_val, 1.0)
        on = (lb_val > 0) & (K * g * (lb_val + 1.0) < lb_val)
        c = jnp.where(on, _c_on_fn(K, g, safe), 0.0)
        beta = jnp.where(on, _beta_on_fn(g, safe), _beta_off_fn(K, lb_val))
    loss = _F_fn(a, c, beta, K, g, lb_val)
    return {"a": a, "c": c, "beta": beta, "g": g, "kappa": jnp.sqrt(N * lam_H / lam_W), "loss": loss}


def mse_minimizer_norms(K: int, N: int, d: int, lam_W, lam_H, lam_b=None):
    """(||W||_F, ||H||_F, ||b||) at the global minimiser of the MSE UFM (zero past K sqrt(N lam_W lam_H) >= 1).

    ||W||^2 = kappa tr Z, ||H||^2 = N tr Z / kappa, tr Z = (K-1) a + c (Zhou et al. 2022; Tirer & Bruna 2022).
    Needs d >= K without bias or with lam_b > 0, d >= K-1 with an unregularised bias (lam_b = 0).
    """
    d = _check_int("d", d, 1)
    need = K - 1 if (lam_b is not None and np.ndim(lam_b) == 0 and not _is_traced(lam_b) and float(lam_b) == 0.0) else K
    if d < need:
        raise ValueError(f"d must be >= {need} for this bias setting, got d={d}")
    m = mse_minimizer(K, N, lam_W, lam_H, lam_b)
    trZ = (K - 1) * m["a"] + m["c"]
    return jnp.sqrt(m["kappa"] * trZ), jnp.sqrt(N * trZ / m["kappa"]), jnp.sqrt(K) * m["beta"]


def _is_traced(x) -> bool:
    try:
        np.asarray(x, dtype=float)
        return False
    except Exception:
        return True


def mse_minimizer_gram(K: int, N: int, lam_W, lam_H, lam_b=None):
    """(W W^T, M^T M) at the MSE-UFM minimiser, K x K: kappa Z and Z / kappa, Z = a(I - 11^T/K) + c 11^T/K."""
    m = mse_minimizer(K, N, lam_W, lam_H, lam_b)
    J = jnp.ones((K, K)) / K
    Z = m["a"][..., None, None] * (jnp.eye(K) - J) + m["c"][..., None, None] * J
    kap = m["kappa"][..., None, None]
    return kap * Z, Z / kap


def mse_min_loss(K: int, N: int, lam_W, lam_H, lam_b=None):
    """Global minimum value of the MSE UFM loss (1/2 at and past the threshold without bias)."""
    return mse_minimizer(K, N, lam_W, lam_H, lam_b)["loss"]


def mse_threshold_lambda(K: int, N: int):
    """lam* with lam_W = lam_H = lam*: K sqrt(N) lam* = 1, past which the MSE minimiser is W = H = 0."""
    K = _check_int("K", K, 2)
    N = _check_int("N", N, 1)
    return 1.0 / (K * np.sqrt(N))


def zero_point_hessian_min_eig(K: int, N: int, lam_W, lam_H):
    """Smallest Hessian eigenvalue of the no-bias (or lam_b = 0 bias at b = 1/K) MSE UFM at a non-collapsed
    critical point with a missing mode: (lam_W+lam_H)/2 - sqrt(((lam_W-lam_H)/2)^2 + 1/(K^2 N)) (Zhou et al. 2022)."""
    K = _check_int("K", K, 2)
    N = _check_int("N", N, 1)
    _check_lam("lam_W", lam_W)
    _check_lam("lam_H", lam_H)
    return _mu_minus_fn(K, N, jnp.asarray(lam_W, dtype=float), jnp.asarray(lam_H, dtype=float))


def _helmert(K: int) -> np.ndarray:
    """K x (K-1) orthonormal basis of 1^perp (Helmert columns)."""
    V = np.zeros((K, K - 1))
    for j in range(1, K):
        V[:j, j - 1] = 1.0 / np.sqrt(j * (j + 1))
        V[j, j - 1] = -j / np.sqrt(j * (j + 1))
    return V


def partial_critical_point(K: int, N: int, d: int, lam_W, lam_H, active, bias: bool, Q=None):
    """A critical point of the MSE UFM keeping only the singular modes with active[i] = 1 (Zhou et al. 2022).

    No bias: modes e_i (i < K); bias (lam_b = 0): modes = Helmert basis of 1^perp (i < K-1), b = 1/K. Active modes
    sit at the ETF value a = 1 - K g, inactive ones at 0; active.sum() < #modes gives a non-collapsed critical point.
    Returns (W [K,d], H [d,KN], b [K]); Q (d x d orthogonal) rotates the feature space.
    """
    K = _check_int("K", K, 2)
    N = _check_int("N", N, 1)
    d = _check_int("d", d, 1)
    nmodes = K - 1 if bias else K
    if d < nmodes:
        raise ValueError(f"d must be >= {nmodes}, got {d}")
    active = jnp.asarray(active, dtype=float)
    if active.shape != (nmodes,):
        raise ValueError(f"active must have shape ({nmodes},), got {active.shape}")
    m = mse_minimizer(K, N, lam_W, lam_H, 0.0 if bias else None)
    a, kap = m["a"], m["kappa"]
    U = np.eye(K)[:, :nmodes] if not bias else _helmert(K)  # K x nmodes
    E = np.eye(d)[:, :nmodes]  # d x nmodes
    S = active * jnp.sqrt(a)
    W = (jnp.sqrt(kap) * (jnp.asarray(U) * S[None, :])) @ E.T
    M = (E * S[None, :]) @ U.T / jnp.sqrt(kap)
    if Q is not None:
        W, M = W @ Q.T, Q @ M
    H = jnp.repeat(M, N, axis=1)
    b = (jnp.ones(K) / K) if bias else jnp.zeros(K)
    return W, H, b


def nc1_contraction(K: int, N: int, lam_W, lam_H, lr, lam_b=None):
    """Per-step GD contraction of within-class variability near the minimiser when rank W* = d:
    rho = 1 - lr (lam_H + kappa a / (K N)); NC1_t ~ rho^(2t) (Han, Papyan & Donoho 2022-type linearisation)."""
    m = mse_minimizer(K, N, lam_W, lam_H, lam_b)
    return 1.0 - lr * (jnp.asarray(lam_H, dtype=float) + m["kappa"] * m["a"] / (K * N))


def ce_minimizer(K: int, N: int, lam_W, lam_H) -> dict:
    """CE UFM global minimiser (Zhu et al. 2021): simplex ETF with logit scale A = ||w_k|| ||h_k||,
    A = (K-1)/K log((1-(K-1)g)/g) for K g < 1 (else 0), g = sqrt(N lam_W lam_H); balanced lam_W ||w||^2 = N lam_H ||h||^2.

    Returns A, row norm ||w_k||, class-mean norm ||h_k||, ||W||_F, ||H||_F and the minimal loss.
    """
    K = _check_int("K", K, 2)
    N = _check_int("N", N, 1)
    _check_lam("lam_W", lam_W)
    _check_lam("lam_H", lam_H)
    lam_W = jnp.asarray(lam_W, dtype=float)
    lam_H = jnp.asarray(lam_H, dtype=float)
    g = jnp.sqrt(N * lam_W * lam_H)
    alive = K * g < 1.0
    A = jnp.where(alive, _A_ce_fn(K, jnp.where(alive, g, 0.5 / K)), 0.0)
    w2 = A * jnp.sqrt(N * lam_H / lam_W)
    h2 = A * jnp.sqrt(lam_W / (N * lam_H))
    return {"A": A, "w_row": jnp.sqrt(w2), "h_class": jnp.sqrt(h2), "norm_W": jnp.sqrt(K * w2),
            "norm_H": jnp.sqrt(K * N * h2), "loss": _g_ce_fn(A, K, g), "g": g}


def mse_imbalanced_class_norms(class_sizes, lam_W, lam_H):
    """No-bias MSE UFM with n_k samples in class k, n = sum n_k: s_k = (sqrt(n_k) - n sqrt(lam_W lam_H))_+,
    ||w_k||^2 = s_k sqrt(lam_H/lam_W), ||h_k||^2 = s_k sqrt(lam_W/lam_H) / n_k (minority collapse: s_k = 0).
    class_sizes: [..., K] (may be traced); returns (||w_k||, ||h_k||) of the same shape."""
    _check_lam("lam_W", lam_W)
    _check_lam("lam_H", lam_H)
    nk = jnp.asarray(class_sizes, dtype=float)
    lam_W = jnp.asarray(lam_W, dtype=float)[..., None]
    lam_H = jnp.asarray(lam_H, dtype=float)[..., None]
    n = nk.sum(-1, keepdims=True)
    s = jnp.maximum(jnp.sqrt(nk) - n * jnp.sqrt(lam_W * lam_H), 0.0)
    return jnp.sqrt(s * jnp.sqrt(lam_H / lam_W)), jnp.sqrt(s * jnp.sqrt(lam_W / lam_H) / nk)


def minority_threshold_ratio(K_major: int, K_minor: int, n_major: float, lam):
    """Imbalance ratio R* = n_major/n_minor at which minority classes vanish (lam_W = lam_H = lam, no bias):
    sqrt(n_major/R) = (K_major n_major + K_minor n_major/R) lam, the larger root in R (numpy)."""
    # x = 1/sqrt(R): K_minor n lam x^2 - sqrt(n) x + K_major n lam = 0, smaller root in x
    A, B, C = K_minor * n_major * lam, -np.sqrt(n_major), K_major * n_major * lam
    disc = B * B - 4 * A * C
    if disc < 0:
        return np.inf
    x = (-B - np.sqrt(disc)) / (2 * A)
    return 1.0 / x ** 2


EXT_Q_CRIT = float(2.0 ** (-4.0 / 3.0))
EXT_Q_SPINODAL = float(0.75 * 4.0 ** (-1.0 / 3.0))


def extended_ufm_minimizer(K: int, N: int, lam_W2, lam_W1, lam_H, newton_steps: int = 60) -> dict:
    """Extended UFM 1/(2KN)||W2 W1 H - Y||^2 + ridge (Tirer & Bruna 2022), no bias, linear or ReLU middle layer:
    every mode at s = t^3, t the largest root of t^4 - t + q = 0, q = K (N lam_W2 lam_W1 lam_H)^(1/3), if
    q < 2^(-4/3) (first-order jump from s = 1/2), else 0. Returns s, q and the minimal loss (s-1)^2/2 + 3/2 q s^(2/3);
    also the non-zero branch s_plus (exists for q < q_sp = (3/4) 4^(-1/3), metastable for q > q*; NaN past q_sp) and
    the losses loss_m[m] = (K-m)/(2K) + m f(s_plus) of the local minima with m modes on (m = 0..K).
    The largest root is found by Newton from t = 1 (monotone: the quartic is convex for t > 0)."""
    K = _check_int("K", K, 2)
    N = _check_int("N", N, 1)
    for nm, v in (("lam_W2", lam_W2), ("lam_W1", lam_W1), ("lam_H", lam_H)):
        _check_lam(nm, v)
    prod = jnp.asarray(lam_W2, dtype=float) * jnp.asarray(lam_W1, dtype=float) * jnp.asarray(lam_H, dtype=float)
    q = K * jnp.cbrt(N * prod)
    exists = q < EXT_Q_SPINODAL
    qe = jnp.where(exists, q, 0.0)
    t = jnp.ones_like(q)
    for _ in range(newton_steps):
        t = t - (t ** 4 - t + qe) / (4 * t ** 3 - 1)
    alive = q < EXT_Q_CRIT
    s = jnp.where(alive, t ** 3, 0.0)
    loss = (s - 1) ** 2 / 2 + 1.5 * q * jnp.where(alive, t ** 2, 0.0)
    f_plus = jnp.where(exists, ((t ** 3 - 1) ** 2 / 2 + 1.5 * q * t ** 2) / K, jnp.nan)
    m = jnp.arange(K + 1)
    loss_m = (K - m) / (2 * K) + m * f_plus[..., None]
    return {"s": s, "q": q, "loss": loss, "s_plus": jnp.where(exists, t ** 3, jnp.nan), "loss_m": loss_m}


# ----------------------------------------------------------------------------------------------------------------
# Central path of the MSE UFM (Han, Papyan & Donoho 2022). Our derivation, in the loss normalisation used above
# (L = 1/(2n)||W H + b 1^T - Y||^2 + ridge, n = K N, balanced classes):
#  * L is quadratic in Wt = [W b]: L = 1/2 tr(Wt A Wt^T) - tr(Wt C^T) + tr(Y Y^T)/(2n) + lam_H/2||H||^2 with
#    A = Ht Ht^T/n + diag(lam_W I_d, lam_b), C = Y Ht^T/n, Ht = [H; 1^T]. Hence the exact decomposition
#        L(W, b, H) = L(W*(H), b*(H), H) + 1/2 tr(D A D^T),   D = Wt - Wt*(H),  Wt*(H) = C A^{-1}
#    (term (B) = distance to the central path in the A-metric), and grad_Wt L = D A, so along gradient flow
#    dD/dt = -D A - d/dt Wt*(H(t)). Adiabatic (slaved) deviation: D0 = -X, X = (d/dt Wt*) A^{-1}; E = D - D0 obeys
#    dE/dt = -E A + dX/dt, so ||E(t)|| <= ||E(0)|| e^{-lam t} + sup||dX/dt|| / lam (lam = min eig A on [0, t]).
#  * On the central path without ridge: L*(H) = [(K-1) - tr(Sigma_T^{-1} Sigma_B)]/(2K) = 1/(2K) sum_j 1/(1+s_j),
#    s_j the K-1 non-zero eigenvalues of Sigma_W^{-1} Sigma_B (squared singular values omega_j^2 of the SNR matrix
#    Sigma_W^{-1/2} Mbar / sqrt(K)); its gradient is
#        dL*/dh_{i,c} = -1/(K n) [Sigma_T^{-1} mubar_c - Sigma_T^{-1} Sigma_B Sigma_T^{-1} (h_{i,c} - mu_G)].
#    The within-class part -Sigma_T^{-1} Sigma_B Sigma_T^{-1} e_{i,c} has the form Lambda e (Lambda symmetric), i.e.
#    it is normal to the renormalised manifold {Sigma_W = I}; projected ("continually renormalised") gradient flow
#    moves only the class means: dMbar/dt = (I + Sigma_B)^{-2} Mbar / (K n). Singular vectors are frozen and
#        ds_j/dt = 2/(K n) s_j/(1+s_j)^2  =>  log s_j + 2 s_j + s_j^2/2 = log s_j(0) + 2 s_j(0) + s_j(0)^2/2 + 2t/(K n),
#    i.e. K n log(omega) + K n omega^2 + (K n/4) omega^4 = a_j + t: the form c1 log w + c2 w^2 + c3 w^4 = a_j + t of
#    Han, Papyan & Donoho 2022 (their constants follow their normalisation). All s_j -> inf with s_j ~ 2 sqrt(t/(K n))
#    and s_j/s_k -> 1 (equal SNR: simplex ETF in whitened coordinates), NC1 = tr(Sigma_W Sigma_B^+)/K = sum 1/s_j / K -> 0.
cp_s, cp_t, cp_c = sp.symbols("s t kappa", positive=True)  # kappa = K n
cp_omega = sp.Symbol("omega", positive=True)
cp_F = sp.log(cp_s) + 2 * cp_s + cp_s ** 2 / 2
cp_rate = 2 / cp_c * cp_s / (1 + cp_s) ** 2


def _cp_quadratic_form():
    """(K,N,d) = (2,2,1) explicit: the MSE loss equals 1/2 tr(Wt A Wt^T) - tr(Wt C^T) + tr(Y Y^T)/(2n) (H-ridge aside)."""
    Kc, Nc, dc = 2, 2, 1
    n = Kc * Nc
    H = sp.Matrix(dc, n, lambda i, j: sp.Symbol(f"h{i}_{j}", real=True))
    Y = sp.Matrix(Kc, n, lambda i, j: 1 if j // Nc == i else 0)
    Ht = H.col_join(sp.ones(1, n))
    Wt = sp.Matrix(Kc, dc + 1, lambda i, j: sp.Symbol(f"w{i}{j}", real=True))
    R = Wt * Ht - Y
    L = sum(x ** 2 for x in R) / (2 * n) + lW / 2 * sum(x ** 2 for x in Wt[:, :dc]) + lb / 2 * sum(x ** 2 for x in Wt[:, dc])
    A = Ht * Ht.T / n + sp.diag(*([lW] * dc + [lb]))
    C = Y * Ht.T / n
    return sp.expand(L - ((Wt * A * Wt.T).trace() / 2 - (Wt * C.T).trace() + (Y * Y.T).trace() / (2 * n)))


def _cp_generic_quadratic():
    """Generic symmetric A (3x3), C (2x3): q(Wt) - q(Wt*) - tr(D A D^T)/2 = 0 and grad q = D A, Wt* = C A^{-1}."""
    A = sp.Matrix(3, 3, lambda i, j: sp.Symbol(f"a{min(i, j)}{max(i, j)}", real=True))
    C = sp.Matrix(2, 3, lambda i, j: sp.Symbol(f"c{i}{j}", real=True))
    Wt = sp.Matrix(2, 3, lambda i, j: sp.Symbol(f"w{i}{j}", real=True))

    def q(X):
        return (X * A * X.T).trace() / 2 - (X * C.T).trace()

    Ws = C * A.inv()
    D = Wt - Ws
    grad = sp.Matrix(2, 3, lambda i, j: sp.diff(q(Wt), Wt[i, j]))
    return sp.Matrix([sp.simplify(sp.together(q(Wt) - q(Ws) - (D * A * D.T).trace() / 2))]).col_join(
        (grad - D * A).applyfunc(lambda x: sp.simplify(sp.expand(x))).reshape(6, 1))


def _cp_loss_trace_identity():
    """K = 3, d = 2 from sufficient statistics (class means m, Sigma_W): min_{W,b} L = [(K-1) - tr(S_T^{-1} S_B)]/(2K)."""
    Kc, dc = 3, 2
    m = sp.Matrix(dc, Kc, lambda i, j: sp.Symbol(f"m{i}{j}", real=True))
    w11, w12, w22 = sp.symbols("sw11 sw12 sw22", real=True)
    SW = sp.Matrix([[w11, w12], [w12, w22]])
    muG = m * sp.ones(Kc, 1) / Kc
    Mb = m - muG * sp.ones(1, Kc)
    SB = Mb * Mb.T / Kc
    ST = SW + SB
    A = (ST + muG * muG.T).row_join(muG).col_join(muG.T.row_join(sp.ones(1, 1)))  # Ht Ht^T / n
    C = m.T.row_join(sp.ones(Kc, 1)) / Kc  # Y Ht^T / n
    Lcp = (1 - (C * A.inv() * C.T).trace()) / 2  # tr(Y Y^T)/(2n) - tr(C A^{-1} C^T)/2
    return sp.simplify(sp.together(Lcp - ((Kc - 1) - (ST.inv() * SB).trace()) / (2 * Kc)))


def _cp_small_direct():
    """(K,N,d) = (2,2,1) explicit features: OLS residual = 1/(4(1+s)), s = S_B/S_W, and the gradient formula."""
    Kc, Nc = 2, 2
    n = Kc * Nc
    H = sp.Matrix(1, n, lambda i, j: sp.Symbol(f"h{j}", real=True))
    Y = sp.Matrix(Kc, n, lambda i, j: 1 if j // Nc == i else 0)
    Ht = H.col_join(sp.ones(1, n))
    Ws = Y * Ht.T / n * (Ht * Ht.T / n).inv()
    Lcp = sum(x ** 2 for x in (Ws * Ht - Y)) / (2 * n)
    mu = [sum(H[0, c * Nc + i] for i in range(Nc)) / Nc for c in range(Kc)]
    muG = sum(H) / n
    SB = sum((m - muG) ** 2 for m in mu) / Kc
    SW = sum((H[0, j] - mu[j // Nc]) ** 2 for j in range(n)) / n
    ST = SB + SW
    out = [sp.cancel(sp.together(Lcp - sp.Rational(1, 2 * Kc) / (1 + SB / SW)))]
    for j in (0, Nc):  # one sample per class; the others follow by exchanging h's within a class
        g = -sp.Rational(1, Kc * n) * ((mu[j // Nc] - muG) / ST - SB / ST ** 2 * (H[0, j] - muG))
        out.append(sp.cancel(sp.together(sp.diff(Lcp, H[0, j]) - g)))
    return sp.Matrix(out)


IDENTITIES += [
    Identity("central_path_quadratic_form", _cp_quadratic_form,
             "MSE UFM as a quadratic in Wt = [W b]: 1/2 tr(Wt A Wt^T) - tr(Wt C^T) + const, A = Ht Ht^T/n + ridge",
             "Han, Papyan & Donoho 2022"),
    Identity("central_path_decomposition", _cp_generic_quadratic,
             "L(W,b,H) = L(W*(H),b*(H),H) + 1/2 tr(D A D^T), D = Wt - C A^{-1}; grad_Wt L = D A (so dD/dt = -D A - dWt*/dt)",
             "Han, Papyan & Donoho 2022"),
    Identity("central_path_loss_trace", _cp_loss_trace_identity,
             "loss on the (unregularised) central path = [(K-1) - tr(Sigma_T^{-1} Sigma_B)]/(2K) (K=3, d=2)",
             "Han, Papyan & Donoho 2022"),
    Identity("central_path_loss_and_gradient", _cp_small_direct,
             "explicit K=2 features: OLS residual 1/(2K(1+s)) and dL*/dh = -[S_T^{-1} mubar_c - S_T^{-1} S_B S_T^{-1}"
             " (h - mu_G)]/(K n)", "Han, Papyan & Donoho 2022"),
    Identity("renormalized_snr_flow",
             lambda: sp.Matrix([sp.simplify(sp.diff(cp_F, cp_s) * cp_rate - 2 / cp_c),
                                sp.simplify((cp_c * sp.log(cp_omega) + cp_c * cp_omega ** 2 + cp_c / 4 * cp_omega ** 4
                                             - cp_c / 2 * cp_F.subs(cp_s, cp_omega ** 2)))]),
             "ds/dt = 2 s/(K n (1+s)^2) is solved by log s + 2 s + s^2/2 = const + 2t/(K n); in omega = sqrt(s): "
             "K n log w + K n w^2 + (K n/4) w^4 = a + t", "Han, Papyan & Donoho 2022"),
    Identity("renormalized_mean_flow_singular_value",
             lambda: sp.simplify(sp.diff(cp_omega ** 2 / K_, cp_omega) * cp_omega / (cp_c * (1 + cp_omega ** 2 / K_) ** 2)
                                 - cp_rate.subs(cp_s, cp_omega ** 2 / K_)),
             "dMbar/dt = (I + Mbar Mbar^T/K)^{-2} Mbar/(K n): singular value sigma obeys dsigma/dt = sigma/(K n "
             "(1+sigma^2/K)^2), hence s = sigma^2/K obeys the SNR flow", "Han, Papyan & Donoho 2022"),
]


def renormalized_snr(s0, t, K: int, n: int, newton_steps: int = 60):
    """Closed-form SNR eigenvalues on the renormalised central path: log s + 2s + s^2/2 = F(s0) + 2t/(K n)
    (Han, Papyan & Donoho 2022, our normalisation); s0 [...] >= 0 broadcast against t; Newton in u = log s (convex)."""
    K = _check_int("K", K, 2)
    n = _check_int("n", n, K)
    s0c = concrete(s0)
    if s0c is not None and (not np.all(np.isfinite(s0c)) or np.any(s0c <= 0)):
        raise ValueError(f"s0 must be finite and > 0, got {s0!r}")
    tc = concrete(t)
    if tc is not None and (not np.all(np.isfinite(tc)) or np.any(tc < 0)):
        raise ValueError(f"t must be finite and >= 0, got {t!r}")
    s0 = jnp.asarray(s0, dtype=float)
    c = jnp.log(s0) + 2 * s0 + s0 ** 2 / 2 + 2 * jnp.asarray(t, dtype=float) / (K * n)
    # G(u) = u + 2 e^u + e^{2u}/2 - c is increasing and convex; both starts have G >= 0, so Newton decreases monotonically
    u = jnp.minimum(c, jnp.log(2 * jnp.sqrt(jnp.maximum(c, 1.0))))
    for _ in range(newton_steps):
        e = jnp.exp(u)
        u = u - (u + 2 * e + e ** 2 / 2 - c) / (1 + e) ** 2
    return jnp.exp(u)


def central_path_loss_snr(s, K: int):
    """Loss on the unregularised central path: 1/(2K) sum_j 1/(1+s_j) over the K-1 SNR eigenvalues s [..., K-1]."""
    K = _check_int("K", K, 2)
    s = jnp.asarray(s, dtype=float)
    if s.shape[-1:] != (K - 1,):
        raise ValueError(f"s must have last axis K-1 = {K - 1}, got shape {s.shape}")
    return jnp.sum(1.0 / (1.0 + s), axis=-1) / (2 * K)


def ridge_ls_classifier(H, Y, lam_W=0.0, lam_b=0.0):
    """Central-path classifier Wt* = [W* b*] = C A^{-1}, A = Ht Ht^T/n + diag(lam_W I, lam_b), C = Y Ht^T/n,
    Ht = [H; 1^T] (ridge least squares; Han, Papyan & Donoho 2022). H [d, n], Y [K, n] -> (Wt* [K, d+1], A [d+1, d+1])."""
    H = jnp.asarray(H, dtype=float)
    Y = jnp.asarray(Y, dtype=float)
    if H.ndim != 2 or Y.ndim != 2 or H.shape[1] != Y.shape[1]:
        raise ValueError(f"H must be [d, n] and Y [K, n], got H{H.shape}, Y{Y.shape}")
    _check_lam("lam_W", lam_W, allow_zero=True)
    _check_lam("lam_b", lam_b, allow_zero=True)
    d, n = H.shape
    Ht = jnp.vstack([H, jnp.ones((1, n))])
    A = Ht @ Ht.T / n + jnp.diag(jnp.concatenate([jnp.full(d, lam_W, dtype=float), jnp.array([lam_b], dtype=float)]))
    C = Y @ Ht.T / n
    return jnp.linalg.solve(A, C.T).T, A


def adiabatic_deviation(H, Hdot, Y, lam_W=0.0, lam_b=0.0):
    """Slaved deviation from the central path D0 = -(d/dt Wt*) A^{-1}, with d/dt Wt* = (Cdot - Wt* Adot) A^{-1},
    Cdot = Y Htdot^T/n, Adot = (Htdot Ht^T + Ht Htdot^T)/n (Htdot = [Hdot; 0]). H, Hdot [d, n] -> D0 [K, d+1]."""
    H = jnp.asarray(H, dtype=float)
    Hdot = jnp.asarray(Hdot, dtype=float)
    if Hdot.shape != H.shape:
        raise ValueError(f"Hdot must have the shape of H {H.shape}, got {Hdot.shape}")
    Ws, A = ridge_ls_classifier(H, Y, lam_W, lam_b)
    d, n = H.shape
    Ht = jnp.vstack([H, jnp.ones((1, n))])
    Htd = jnp.vstack([Hdot, jnp.zeros((1, n))])
    Adot = (Htd @ Ht.T + Ht @ Htd.T) / n
    Cdot = jnp.asarray(Y, dtype=float) @ Htd.T / n
    Wdot = jnp.linalg.solve(A, (Cdot - Ws @ Adot).T).T
    return -jnp.linalg.solve(A, Wdot.T).T
