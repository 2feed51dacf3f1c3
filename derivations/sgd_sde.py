"""SGD as a stochastic differential equation: the theory side (sympy identities + closed forms in jax.numpy).

Contents (spec: shared/spec/sgd_sde.md):
1. Noisy quadratic L = x^T H x / 2, g = Hx + xi, xi ~ N(0, C/B): stationary covariance of SGD (exact discrete
   Lyapunov) and of its SDE dX = -HX dt + sqrt(eta C/B) dW (continuous Lyapunov HS + SH = eta C/B).
2. Least squares with Gaussian features (Bordelon & Pehlevan 2022): exact second-moment recursion
   E' = (I - eta S) E (I - eta S) + eta^2/B (S E S + S tr(S E) + sigma^2 S) and its diagonal closure, solved in closed
   form c_t = A^t (c_0 - c_inf) + c_inf.
3. Mean-square stability: spectral radius of the closure matrix A (Wu, Ma & E 2018; Ma & Ying 2021).
4. Stochastic modified equations (Li, Tai & E 2017): local weak expansions of SGD and the SME to O(eta^2).
5. Malladi et al. 2022: invariance of the RMSprop/Adam SDE constants under the square-root scaling rule.
6. Escape from a cubic well: exact MFPT of the SDE, Kramers' law, and the exact mean escape time of the SGD Markov
   chain itself (minibatch Hessian-shaped noise, Nystrom); the renewal estimator's expectation.

Closed forms are plain jax.numpy functions (jit/vmap/grad-safe); nothing here imports `toymodels`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import sympy as sp

from .codegen import Identity, to_jax

__all__ = [
    "IDENTITIES",
    "stationary_covariance",
    "commuting_covariance",
    "moment_recursion",
    "closure_matrix",
    "learning_curve",
    "compute_optimal_batch",
    "ms_spectral_radius",
    "ms_threshold_1d",
    "ms_threshold",
    "sqrt_scaling",
    "linear_scaling",
    "sde_constants",
    "rmsprop_sde_loss",
    "adam_sde_loss",
    "kramers_time",
    "exact_mfpt",
    "sgd_chain_mfpt",
    "renewal_tau_mean",
]

# ----------------------------------------------------------------------------------------------------------
# symbols
eta, B, lam_i, lam_j, c_ij, lam, sigma2 = sp.symbols("eta B lambda_i lambda_j c_ij lambda sigma2", positive=True)
kappa = sp.symbols("kappa", positive=True)

#: exact discrete-Lyapunov stationary covariance of SGD in the commuting case (H, C diagonal in one basis)
SIGMA_DISCRETE = eta * c_ij / (B * (lam_i + lam_j - eta * lam_i * lam_j))
#: continuous-Lyapunov (OU / SDE) stationary covariance in the commuting case
SIGMA_SDE = eta * c_ij / (B * (lam_i + lam_j))
#: 1-D mean-square stability threshold (1 - eta lam)^2 + 2 eta^2 lam^2 / B = 1
ETA_MS_1D = 2 * B / (lam * (B + 2))

_commuting_discrete = to_jax(SIGMA_DISCRETE, [lam_i, lam_j, c_ij, eta, B])
_commuting_sde = to_jax(SIGMA_SDE, [lam_i, lam_j, c_ij, eta, B])
_ms_1d = to_jax(ETA_MS_1D, [lam, B])


# ----------------------------------------------------------------------------------------------------------
# identities
def _discrete_lyapunov_residual():
    a_i, a_j = 1 - eta * lam_i, 1 - eta * lam_j
    return SIGMA_DISCRETE - a_i * a_j * SIGMA_DISCRETE - eta**2 * c_ij / B


def _continuous_lyapunov_residual():
    return (lam_i + lam_j) * SIGMA_SDE - eta * c_ij / B


def _relative_gap():
    # (Sigma - S) / S = eta lam_i lam_j / (lam_i + lam_j - eta lam_i lam_j) = O(eta)
    return (SIGMA_DISCRETE - SIGMA_SDE) / SIGMA_SDE - eta * lam_i * lam_j / (lam_i + lam_j - eta * lam_i * lam_j)


def _reference_numbers():
    sub = lambda e, li, lj: e.subs({lam_i: li, lam_j: lj, c_ij: 1, eta: sp.Rational(1, 10), B: 1})
    return sp.Matrix(
        [
            sub(SIGMA_DISCRETE, 1, 1) - sp.Rational(1, 19),  # 0.0526316
            sub(SIGMA_SDE, 1, 1) - sp.Rational(1, 20),  # 0.05
            sub(SIGMA_DISCRETE, 3, 3) - sp.Rational(1, 51),  # 0.0196078
            sub(SIGMA_SDE, 3, 3) - sp.Rational(1, 60),  # 0.0166667
        ]
    )


def _sym(name, d):
    m = sp.Matrix(d, d, lambda i, j: sp.Symbol(f"{name}_{min(i, j)}{max(i, j)}"))
    return m


def _wick(S, A):
    """E[x x^T A x x^T] for x ~ N(0, S), entrywise from Isserlis' theorem (no matrix identity assumed)."""
    d = S.shape[0]
    out = sp.zeros(d, d)
    for i in range(d):
        for l in range(d):
            out[i, l] = sum(
                A[j, k] * (S[i, j] * S[k, l] + S[i, k] * S[j, l] + S[i, l] * S[j, k])
                for j in range(d)
                for k in range(d)
            )
    return out


def _gaussian_fourth_moment():
    S, A = _sym("s", 2), _sym("a", 2)
    return sp.expand(_wick(S, A) - (2 * S * A * S + S * (S * A).trace()))


def _moment_recursion():
    # batch of B iid samples: E[Hhat E Hhat] = (1/B^2)[B(B-1) S E S + B * Wick(S, E)], plus label-noise term
    S, E = _sym("s", 2), _sym("e", 2)
    I = sp.eye(2)
    hEh = (B * (B - 1) * S * E * S + B * _wick(S, E)) / B**2
    derived = E - eta * S * E - eta * E * S + eta**2 * hEh + eta**2 * sigma2 * S / B
    spec = (I - eta * S) * E * (I - eta * S) + eta**2 / B * (S * E * S + S * (S * E).trace() + sigma2 * S)
    return sp.expand(derived - spec)


def _diagonal_closure():
    d = 3
    lams = sp.symbols("l1:4", positive=True)
    S = sp.diag(*lams)
    E = _sym("e", d)
    I = sp.eye(d)
    full = (I - eta * S) * E * (I - eta * S) + eta**2 / B * (S * E * S + S * (S * E).trace() + sigma2 * S)
    c = [E[i, i] for i in range(d)]
    closure = [
        (1 - eta * lams[i]) ** 2 * c[i]
        + eta**2 / B * (lams[i] ** 2 * c[i] + lams[i] * sum(lams[j] * c[j] for j in range(d)) + sigma2 * lams[i])
        for i in range(d)
    ]
    return sp.Matrix([sp.expand(full[i, i] - closure[i]) for i in range(d)])


def _ms_threshold_1d():
    e = ETA_MS_1D
    return (1 - e * lam) ** 2 + 2 * e**2 * lam**2 / B - 1


x = sp.Symbol("x", real=True)
_f, _Sig, _phi = sp.Function("f"), sp.Function("Sigma"), sp.Function("phi")


def _local_weak_defect(order: int):
    """E phi(x_1) of one SGD step minus E phi(X_eta) of the SME started at x, to O(eta^2) (returns the eta^2 coefficient
    and the eta^1 coefficient). SGD: x_1 = x - eta (f' + sqrt(Sigma) xi), xi ~ N(0,1). SME generator
    L phi = b phi' + (eta Sigma / 2) phi'', b = -f' (order 1) or -f' - (eta/4) (f'^2)' (order 2); E phi(X_eta) = phi +
    eta L phi + eta^2/2 L^2 phi + O(eta^3)."""
    fp = sp.diff(_f(x), x)
    xi = sp.Symbol("xi")
    delta = -eta * (fp + sp.sqrt(_Sig(x)) * xi)
    moments = {0: 1, 1: 0, 2: 1, 3: 0, 4: 3}
    taylor = sum(sp.diff(_phi(x), x, n) * delta**n / sp.factorial(n) for n in range(0, 4))
    taylor = sp.expand(taylor)
    sgd = sum(taylor.coeff(xi, n) * moments[n] for n in range(0, 4))
    b = -fp if order == 1 else -fp - eta / 4 * sp.diff(fp**2, x)
    L = lambda g: b * sp.diff(g, x) + eta * _Sig(x) / 2 * sp.diff(g, x, 2)
    sme = _phi(x) + eta * L(_phi(x)) + eta**2 / 2 * L(L(_phi(x)))
    diff = sp.expand(sgd - sme)
    return diff.coeff(eta, 1), diff.coeff(eta, 2)


def _sme_order1():
    c1, c2 = _local_weak_defect(1)
    fp, fpp = sp.diff(_f(x), x), sp.diff(_f(x), x, 2)
    # order-1 SME: local defect vanishes at O(eta) and is -(1/2) f' f'' phi' eta^2 at O(eta^2)
    return sp.Matrix([c1, c2 + sp.Rational(1, 2) * fp * fpp * sp.diff(_phi(x), x)])


def _sme_order2():
    c1, c2 = _local_weak_defect(2)
    return sp.Matrix([c1, c2])


# Malladi et al. 2022: SDE constants sigma0 = sigma*eta, eps0 = eps*eta, c = (1-beta)/eta^2 and SDE time t = k eta^2
_sig, _eps, _omb, _k = sp.symbols("sigma epsilon one_minus_beta k", positive=True)


def _sqrt_rule_invariance():
    # batch kappa*B: noise sigma -> sigma/sqrt(kappa); eta -> sqrt(kappa) eta; 1-beta -> kappa(1-beta);
    # eps -> eps/sqrt(kappa); steps k -> k/kappa at a fixed number of examples seen
    s2, e2, o2, eps2, k2 = _sig / sp.sqrt(kappa), sp.sqrt(kappa) * eta, kappa * _omb, _eps / sp.sqrt(kappa), _k / kappa
    return sp.Matrix(
        [
            s2 * e2 - _sig * eta,
            eps2 * e2 - _eps * eta,
            o2 / e2**2 - _omb / eta**2,
            k2 * e2**2 - _k * eta**2,
        ]
    )


# RMSprop SDE on the noisy quadratic with isotropic noise (Sigma = I) started at u_0 = 1: du = c (1 - u) dt keeps u = 1,
# so per coordinate dX = -a X dt - s dW with a = h/(sigma0 + eps0), s = sigma0/(sigma0 + eps0) (an OU process)
_t, _a, _s, _m0 = sp.symbols("t a s m0", positive=True)
M2_RMSPROP_SDE = _m0 * sp.exp(-2 * _a * _t) + _s**2 / (2 * _a) * (1 - sp.exp(-2 * _a * _t))
_m2_rmsprop = to_jax(M2_RMSPROP_SDE, [_m0, _a, _s, _t])


def _adam_sde_reduction():
    # Adam SDE (Malladi et al. 2022): du = c2 (1 - u) dt, u(0) = 0 gives u = gamma2 = 1 - exp(-c2 t), and then
    # sqrt(gamma2)/gamma1 * 1/(sigma0 sqrt(u) + eps0 sqrt(gamma2)) = 1/(gamma1 (sigma0 + eps0))
    c2, s0, e0, g1 = sp.symbols("c2 sigma0 epsilon0 gamma1", positive=True)
    u = 1 - sp.exp(-c2 * _t)
    return sp.Matrix([sp.diff(u, _t) - c2 * (1 - u), u.subs(_t, 0),
                      sp.sqrt(u) / g1 / (s0 * sp.sqrt(u) + e0 * sp.sqrt(u)) - 1 / (g1 * (s0 + e0))])


def _rmsprop_sde_moment():
    return sp.Matrix([sp.diff(M2_RMSPROP_SDE, _t) + 2 * _a * M2_RMSPROP_SDE - _s**2,
                      M2_RMSPROP_SDE.subs(_t, 0) - _m0])


# Escape from the cubic well U(x) = dU (3 (x/w)^2 - 2 (x/w)^3) (section 6)
_dU, _w, _T = sp.symbols("Delta_U w T", positive=True)
U_CUBIC = _dU * (3 * (x / _w) ** 2 - 2 * (x / _w) ** 3)


def _cubic_well():
    Up, Upp = sp.diff(U_CUBIC, x), sp.diff(U_CUBIC, x, 2)
    return sp.Matrix([U_CUBIC.subs(x, _w) - U_CUBIC.subs(x, 0) - _dU, Up.subs(x, 0), Up.subs(x, _w),
                      Upp.subs(x, 0) - 6 * _dU / _w**2, Upp.subs(x, _w) + 6 * _dU / _w**2])


def _mfpt_ode():
    # tau'(x) = -(1/T) e^{U(x)/T} int_{-inf}^x e^{-U(z)/T} dz solves the backward equation T tau'' - U' tau' = -1
    U, z = sp.Function("U"), sp.Symbol("z", real=True)
    tau_p = -sp.exp(U(x) / _T) / _T * sp.Integral(sp.exp(-U(z) / _T), (z, -sp.oo, x))
    return _T * sp.diff(tau_p, x) - sp.diff(U(x), x) * tau_p + 1


def _em_invariant_density():
    # Euler-Maruyama / SGD with Gaussian noise, x' = x - eta U' + sqrt(2 T eta) z: E f(x') - f = eta L f + eta^2 L2 f +
    # O(eta^3), L f = -U' f_x + T f_xx, L2 f = U'^2 f_xx/2 - U' T f_xxx + T^2 f_xxxx/2. Its invariant density is
    # rho0 (1 + eta g + O(eta^2)), rho0 = e^{-U/T}, iff L g = -rho0^{-1} L2^dagger rho0; g = U'^2/(4T) - U''/2.
    U = sp.Function("U")(x)
    b = -sp.diff(U, x)
    rho0 = sp.exp(-U / _T)
    g = sp.diff(U, x) ** 2 / (4 * _T) - sp.diff(U, x, 2) / 2
    Lg = b * sp.diff(g, x) + _T * sp.diff(g, x, 2)
    L2_adj = sp.diff(b**2 * rho0, x, 2) / 2 - sp.diff(b * _T * rho0, x, 3) + _T**2 * sp.diff(rho0, x, 4) / 2
    return Lg + L2_adj / rho0


def _renewal_count():
    # lattice renewal process with step counts X, F(s) = E s^X = 1 - mu u + a u^2 + O(u^3) at u = 1 - s, a = E X(X-1)/2:
    # sum_n E[renewals at n] s^n = F/(1 - F) = 1/(mu u) + (a/mu^2 - 1) + O(u), so E n(N) = (N+1)/mu + a/mu^2 - 1 + o(1)
    u, mu, a, c3 = sp.symbols("u mu a c3", positive=True)
    F = 1 - mu * u + a * u**2 - c3 * u**3
    return sp.series(F / (1 - F), u, 0, 1).removeO() - (1 / (mu * u) + a / mu**2 - 1)


IDENTITIES = [
    Identity("discrete_lyapunov", _discrete_lyapunov_residual,
             "commuting-case Sigma_ij = eta c_ij / (B(l_i + l_j - eta l_i l_j)) solves Sigma = A Sigma A + eta^2 C/B"),
    Identity("continuous_lyapunov", _continuous_lyapunov_residual,
             "S_ij = eta c_ij / (B(l_i + l_j)) solves H S + S H = eta C / B"),
    Identity("sde_relative_gap", _relative_gap,
             "(Sigma - S)/S = eta l_i l_j/(l_i + l_j - eta l_i l_j): the SDE covariance is off by O(eta) relatively"),
    Identity("spec_reference_numbers", _reference_numbers,
             "spec section 1: lambda=(1,3), c=I, eta=0.1, B=1 gives 1/19, 1/20, 1/51, 1/60"),
    Identity("gaussian_fourth_moment", _gaussian_fourth_moment,
             "Isserlis: E[x x^T A x x^T] = 2 S A S + S tr(S A) for symmetric A (d=2)"),
    Identity("moment_recursion", _moment_recursion,
             "E[(I - eta Hhat) E (I - eta Hhat)] + eta^2 sigma^2 S/B equals the spec's exact recursion (d=2, batch B)",
             paper="Bordelon & Pehlevan 2022"),
    Identity("diagonal_closure", _diagonal_closure,
             "in the eigenbasis of S the diagonal of the recursion closes on c_i = E_ii (d=3, general E)",
             paper="Bordelon & Pehlevan 2022"),
    Identity("ms_threshold_1d", _ms_threshold_1d,
             "eta* = 2B/(lambda(B+2)) makes E[(1 - eta hhat)^2] = 1 (d=1 mean-square stability)",
             paper="Wu, Ma & E 2018"),
    Identity("sme_order1_local", _sme_order1,
             "SGD one-step weak expansion matches the order-1 SME at O(eta); O(eta^2) defect = -(1/2) f' f'' phi'",
             paper="Li, Tai & E 2017"),
    Identity("sme_order2_local", _sme_order2,
             "with drift -f' - (eta/4)(f'^2)' the one-step defect vanishes at O(eta) and O(eta^2) (weak order 2)",
             paper="Li, Tai & E 2017"),
    Identity("rmsprop_sde_second_moment", _rmsprop_sde_moment,
             "E X^2 of the RMSprop SDE at u = 1 solves d m/dt = -2 a m + s^2, m(0) = x0^2",
             paper="Malladi, Lyu, Panigrahi & Arora 2022"),
    Identity("adam_sde_reduction", _adam_sde_reduction,
             "isotropic noise, u(0)=0: u = gamma2 and the Adam SDE preconditioner reduces to 1/(gamma1 (sigma0+eps0))",
             paper="Malladi, Lyu, Panigrahi & Arora 2022"),
    Identity("cubic_well", _cubic_well,
             "U = dU(3(x/w)^2 - 2(x/w)^3): barrier dU at w, U''(0) = -U''(w) = 6 dU/w^2"),
    Identity("mfpt_backward_equation", _mfpt_ode,
             "the double-integral mean first-passage time solves T tau'' - U' tau' = -1 (reflecting at -inf)",
             paper="Gardiner, Handbook of Stochastic Methods"),
    Identity("em_invariant_density", _em_invariant_density,
             "SGD/Euler-Maruyama stationary density e^{-U/T}(1 + eta(U'^2/(4T) - U''/2)) + O(eta^2): at critical points "
             "the barrier shifts by eta T (U''(a) - U''(b))/2, not by a global temperature rescaling",
             paper="Talay & Tubaro 1990 (invariant-measure expansion)"),
    Identity("renewal_count", _renewal_count,
             "lattice renewal function: F/(1-F) = 1/(mu(1-s)) + E X(X-1)/(2 mu^2) - 1 + O(1-s), whence the renewal "
             "escape-time estimator's expectation", paper="Feller, vol. 1, ch. XIII"),
    Identity("sqrt_rule_invariance", _sqrt_rule_invariance,
             "sigma*eta, eps*eta, (1-beta)/eta^2 and SDE time k eta^2 are invariant under the square-root scaling rule",
             paper="Malladi, Lyu, Panigrahi & Arora 2022"),
]


# ----------------------------------------------------------------------------------------------------------
# closed forms (jax.numpy)
def _check_square(name, M):
    M = jnp.asarray(M)
    if M.ndim != 2 or M.shape[0] != M.shape[1]:
        raise ValueError(f"{name} must be a square matrix, got shape {M.shape}")
    return M


def _check_concrete_positive(name, v):
    if isinstance(v, jax.core.Tracer):
        return
    a = np.asarray(v, dtype=float)
    if not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise ValueError(f"{name} must be positive and finite, got {v!r}")


def _check_psd(name, M, strict=False):
    if isinstance(M, jax.core.Tracer):
        return
    a = np.asarray(M, dtype=float)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains NaN or inf")
    if not np.allclose(a, a.T, atol=1e-12 * max(1.0, np.abs(a).max())):
        raise ValueError(f"{name} must be symmetric")
    w = np.linalg.eigvalsh(a)
    tol = 1e-12 * max(1.0, np.abs(w).max())
    if (strict and w.min() <= tol) or w.min() < -tol:
        raise ValueError(f"{name} must be positive {'definite' if strict else 'semi-definite'}")


def stationary_covariance(H, C, eta, batch_size, discrete=True):
    """Stationary covariance of SGD x' = x - eta (H x + xi), xi ~ N(0, C/B), shapes (d, d) -> (d, d).

    discrete=True: exact discrete Lyapunov Sigma = A Sigma A^T + eta^2 C/B, A = I - eta H (needs rho(A) < 1);
    discrete=False: OU/SDE approximation H S + S H = eta C / B. Solved by Kronecker vectorisation (jit-safe)."""
    H, C = _check_square("H", H), _check_square("C", C)
    if H.shape != C.shape:
        raise ValueError(f"H and C must have the same shape, got {H.shape} and {C.shape}")
    _check_psd("H", H, strict=True)
    _check_psd("C", C)
    _check_concrete_positive("eta", eta)
    _check_concrete_positive("batch_size", batch_size)
    d = H.shape[0]
    I = jnp.eye(d, dtype=H.dtype)
    Q = C / batch_size
    if discrete:
        A = I - eta * H
        if not isinstance(eta, jax.core.Tracer) and not isinstance(H, jax.core.Tracer):
            if np.max(np.abs(np.linalg.eigvals(np.asarray(A)))) >= 1:
                raise ValueError("eta must satisfy eta < 2/lambda_max(H) for a stationary SGD covariance")
        M = jnp.eye(d * d, dtype=H.dtype) - jnp.kron(A, A)
        rhs = (eta**2 * Q).reshape(-1)
    else:
        M = jnp.kron(I, H) + jnp.kron(H, I)
        rhs = (eta * Q).reshape(-1)
    S = jnp.linalg.solve(M, rhs).reshape(d, d)
    return 0.5 * (S + S.T)


def commuting_covariance(lams, c, eta, batch_size, discrete=True):
    """Closed form (commuting H = diag(lams), C = c (d, d) in the same basis): Sigma_ij = eta c_ij/(B(l_i + l_j - eta l_i l_j))
    (discrete) or S_ij = eta c_ij / (B(l_i + l_j)) (SDE). Shapes (d,), (d, d) -> (d, d)."""
    lams = jnp.asarray(lams)
    if lams.ndim != 1:
        raise ValueError(f"lams must be 1-D, got shape {lams.shape}")
    c = _check_square("c", c)
    if c.shape[0] != lams.shape[0]:
        raise ValueError(f"c must be ({lams.shape[0]}, {lams.shape[0]}), got {c.shape}")
    _check_concrete_positive("lams", lams)
    _check_concrete_positive("eta", eta)
    _check_concrete_positive("batch_size", batch_size)
    f = _commuting_discrete if discrete else _commuting_sde
    return f(lams[:, None], lams[None, :], c, eta, batch_size)


def moment_recursion(Sigma, E0, eta, batch_size, noise_var, num_steps: int, save_every: int = 1):
    """Exact second-moment recursion of minibatch SGD on Gaussian least squares (Bordelon & Pehlevan 2022):
    E' = (I - eta S) E (I - eta S) + eta^2/B (S E S + S tr(S E) + sigma^2 S). Returns (E at saves (n_save, d, d),
    test loss tr(S E)/2 + sigma^2/2 at saves (n_save,)), n_save = num_steps // save_every + 1."""
    Sigma, E0 = _check_square("Sigma", Sigma), _check_square("E0", E0)
    if Sigma.shape != E0.shape:
        raise ValueError(f"Sigma and E0 must have the same shape, got {Sigma.shape} and {E0.shape}")
    _check_psd("Sigma", Sigma)
    _check_psd("E0", E0)
    _check_concrete_positive("eta", eta)
    _check_concrete_positive("batch_size", batch_size)
    if not isinstance(num_steps, int) or not isinstance(save_every, int) or save_every < 1 or num_steps % save_every:
        raise ValueError("num_steps must be an int multiple of the positive int save_every")
    d = Sigma.shape[0]
    A = jnp.eye(d, dtype=Sigma.dtype) - eta * Sigma

    def step(E, _):
        E = A @ E @ A + eta**2 / batch_size * (Sigma @ E @ Sigma + Sigma * jnp.trace(Sigma @ E) + noise_var * Sigma)
        return E, None

    def save(E, _):
        E, _ = jax.lax.scan(step, E, None, length=save_every)
        return E, E

    _, Es = jax.lax.scan(save, E0, None, length=num_steps // save_every)
    Es = jnp.concatenate([E0[None], Es], axis=0)
    loss = 0.5 * jnp.einsum("ij,tji->t", Sigma, Es) + 0.5 * noise_var
    return Es, loss


def closure_matrix(lams, eta, batch_size):
    """A_ij = delta_ij (1 - eta l_i)^2 + eta^2/B (l_i^2 delta_ij + l_i l_j): c' = A c + eta^2 sigma^2 l / B, shape (d, d)."""
    lams = jnp.asarray(lams)
    return jnp.diag((1 - eta * lams) ** 2 + eta**2 * lams**2 / batch_size) + eta**2 / batch_size * jnp.outer(lams, lams)


def learning_curve(lams, c0, eta, batch_size, noise_var, steps):
    """Bordelon & Pehlevan 2022 learning curve in closed form: c_t = A^t (c_0 - c_inf) + c_inf (A symmetric, eigh),
    L_t = l . c_t / 2 + sigma^2 / 2. lams, c0: (d,) spectrum and diagonal of E_0 in the eigenbasis; steps: (n,) ints."""
    lams, c0 = jnp.asarray(lams), jnp.asarray(c0)
    if lams.ndim != 1 or c0.shape != lams.shape:
        raise ValueError(f"lams and c0 must be 1-D of equal length, got {lams.shape}, {c0.shape}")
    _check_concrete_positive("lams", lams)
    _check_concrete_positive("eta", eta)
    _check_concrete_positive("batch_size", batch_size)
    A = closure_matrix(lams, eta, batch_size)
    b = eta**2 * noise_var * lams / batch_size
    c_inf = jnp.linalg.solve(jnp.eye(lams.shape[0]) - A, b)
    w, V = jnp.linalg.eigh(A)
    t = jnp.asarray(steps, dtype=lams.dtype)
    coef = V.T @ (c0 - c_inf)
    c_t = (w[None, :] ** t[:, None] * coef[None, :]) @ V.T + c_inf
    return 0.5 * c_t @ lams + 0.5 * noise_var


def compute_optimal_batch(lams, c0, eta, noise_var, budget: int, batch_sizes):
    """Bordelon & Pehlevan 2022 at a fixed compute budget C = B t (samples = batch size x steps): the closed-form test
    loss L_{t = C/B}(B) of `learning_curve` for each B, inf where mean-square unstable (rho(A) >= 1), and its argmin B*.
    lams, c0: (d,); batch_sizes: (n,) positive ints dividing C. Returns (losses (n,) numpy, B* int)."""
    lams, c0 = np.asarray(lams, dtype=float), np.asarray(c0, dtype=float)
    if lams.ndim != 1 or c0.shape != lams.shape:
        raise ValueError(f"lams and c0 must be 1-D of equal length, got {lams.shape}, {c0.shape}")
    _check_concrete_positive("lams", lams)
    _check_concrete_positive("eta", eta)
    if not np.all(np.isfinite(c0)) or np.any(c0 < 0):
        raise ValueError("c0 must be finite and >= 0")
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 1:
        raise ValueError(f"budget must be a positive int, got {budget!r}")
    Bs = np.asarray(batch_sizes)
    if Bs.ndim != 1 or Bs.size == 0 or not np.issubdtype(Bs.dtype, np.integer) or np.any(Bs < 1):
        raise ValueError(f"batch_sizes must be a non-empty 1-D array of positive ints, got {batch_sizes!r}")
    if np.any(budget % Bs):
        raise ValueError(f"every batch size must divide the budget {budget}, got {Bs.tolist()}")
    if not (np.isfinite(noise_var) and noise_var >= 0):
        raise ValueError(f"noise_var must be finite and >= 0, got {noise_var!r}")
    losses = np.full(Bs.size, np.inf)
    for n, B in enumerate(Bs.tolist()):
        if float(ms_spectral_radius(lams, eta, B)) < 1.0:
            losses[n] = float(learning_curve(lams, c0, eta, B, noise_var, np.array([budget // B]))[0])
    if not np.any(np.isfinite(losses)):
        raise ValueError("no batch size is mean-square stable at this eta")
    return losses, int(Bs[int(np.argmin(losses))])


def ms_spectral_radius(lams, eta, batch_size):
    """Spectral radius of the mean-square map of SGD on Gaussian least squares (Wu, Ma & E 2018): rho(A), A from
    `closure_matrix`; the off-diagonal entries of E contract no faster-growing, so SGD is mean-square stable iff rho < 1."""
    return jnp.max(jnp.abs(jnp.linalg.eigvalsh(closure_matrix(lams, eta, batch_size))))


def ms_threshold_1d(lam, batch_size):
    """eta* = 2B / (lam (B + 2)) (d = 1 mean-square stability threshold)."""
    _check_concrete_positive("lam", lam)
    _check_concrete_positive("batch_size", batch_size)
    return _ms_1d(lam, batch_size)


def ms_threshold(lams, batch_size, tol=1e-12):
    """The eta with rho(A(eta, B)) = 1 (bisection in numpy; rho is increasing in eta past its minimum)."""
    lams = np.asarray(lams, dtype=float)
    _check_concrete_positive("lams", lams)
    _check_concrete_positive("batch_size", batch_size)
    B = float(batch_size)

    def rho(e):  # numpy copy of closure_matrix, so this also works while a caller is being traced
        A = np.diag((1 - e * lams) ** 2 + e**2 * lams**2 / B) + e**2 / B * np.outer(lams, lams)
        return float(np.max(np.abs(np.linalg.eigvalsh(A))))

    lo, hi = 1e-12, 2.0 / lams.max()  # rho(2/l_max) >= 1 for any B
    while hi - lo > tol * hi:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if rho(mid) < 1 else (lo, mid)
    return 0.5 * (lo + hi)


def sqrt_scaling(kappa, eta, one_minus_beta, eps):
    """Malladi et al. 2022 square-root rule for batch kappa*B: (sqrt(kappa) eta, kappa (1-beta), eps/sqrt(kappa))."""
    _check_concrete_positive("kappa", kappa)
    return np.sqrt(kappa) * eta, kappa * one_minus_beta, eps / np.sqrt(kappa)


def linear_scaling(kappa, eta, one_minus_beta, eps):
    """The linear rule (Goyal et al. 2017) applied naively to adaptive methods: (kappa eta, 1-beta, eps)."""
    _check_concrete_positive("kappa", kappa)
    return kappa * eta, one_minus_beta, eps


def sde_constants(sigma, eta, one_minus_beta, eps):
    """RMSprop/Adam SDE constants of Malladi et al. 2022: sigma0 = sigma eta, eps0 = eps eta, c = (1-beta)/eta^2
    (SDE time t = k eta^2)."""
    return sigma * eta, eps * eta, one_minus_beta / eta**2


def rmsprop_sde_loss(h, x0, sigma0, eps0, t):
    """E[loss](t) = sum_i h_i E X_i(t)^2 / 2 of the RMSprop SDE (Malladi et al. 2022, Def. 4.1) on L = sum h_i x_i^2/2 with
    isotropic gradient noise (Sigma = I) and u_0 = diag Sigma = 1: X_i is OU with a_i = h_i/(sigma0 + eps0),
    s = sigma0/(sigma0 + eps0). h, x0: (d,); t: (n,) SDE times (t = k eta^2) -> (n,)."""
    h, x0, t = jnp.asarray(h), jnp.asarray(x0), jnp.asarray(t)
    if h.ndim != 1 or x0.shape != h.shape:
        raise ValueError(f"h and x0 must be 1-D of equal length, got {h.shape} and {x0.shape}")
    _check_concrete_positive("h", h)
    _check_concrete_positive("sigma0", sigma0)
    if not isinstance(eps0, jax.core.Tracer) and not (np.isfinite(eps0) and eps0 >= 0):
        raise ValueError(f"eps0 must be finite and >= 0, got {eps0!r}")
    a = h / (sigma0 + eps0)
    s = sigma0 / (sigma0 + eps0)
    m2 = _m2_rmsprop(x0[None, :] ** 2, a[None, :], s, t[:, None])
    return 0.5 * jnp.sum(h[None, :] * m2, axis=1)


def kramers_time(barrier, width, temperature):
    """Kramers' escape time 2 pi / sqrt(U''(a) |U''(b)|) exp(dU/T) for the cubic well (U''(a) = |U''(b)| = 6 dU/w^2)."""
    h = 6.0 * barrier / width**2
    return 2 * jnp.pi / h * jnp.exp(barrier / temperature)


def exact_mfpt(barrier, width, temperature, x0=0.0, x_exit_rel=1.5, n_grid=40001):
    """Exact mean first-passage time of dX = -U'(X) dt + sqrt(2T) dW from x0 to x_exit for the cubic well:
    tau = (1/T) int_{x0}^{x_exit} dy e^{U(y)/T} int_{-inf}^{y} e^{-U(z)/T} dz (numpy, cumulative trapezoid on a
    grid from where U - U(0) = 40 T)."""
    for name, v in (("barrier", barrier), ("width", width), ("temperature", temperature)):
        _check_concrete_positive(name, v)
    U = lambda y: barrier * (3 * (y / width) ** 2 - 2 * (y / width) ** 3)
    lo = -width * np.sqrt(40.0 * temperature / (3.0 * barrier))  # 3 dU (lo/w)^2 >= 40 T
    xs = np.linspace(lo, x_exit_rel * width, n_grid)
    inner = np.concatenate([[0.0], np.cumsum(0.5 * (np.exp(-U(xs[1:]) / temperature) + np.exp(-U(xs[:-1]) / temperature))
                                             * np.diff(xs))])
    f = np.exp(U(xs) / temperature) * inner / temperature
    mask = xs >= x0
    xm, fm = xs[mask], f[mask]
    return float(np.sum(0.5 * (fm[1:] + fm[:-1]) * np.diff(xm)))


def sgd_chain_mfpt(barrier, width, eta, batch, noise_scale=1.0, x0=0.0, x_exit_rel=1.5, points_per_sigma=8.0,
                   n_max=6000, moments=False):
    """Exact mean escape time (time units t = k eta) of the SGD Markov chain x' = x - eta (U'(x) + sqrt(s h/B) z),
    z ~ N(0, 1), h = U''(0) = 6 dU/w^2 (Hessian-shaped noise C = s h, batch B), cubic well, absorbed at x >= x_exit:
    the mean step count solves m(x) = 1 + int_{y < x_exit} N(y; x - eta U'(x), eta^2 s h/B) m(y) dy (Nystrom,
    trapezoid with spacing sigma/points_per_sigma on [x_lo, x_exit], x_lo where U - U(0) = 40 T). Returns eta m(x0), or
    with moments=True the first two moments (E N, E N^2) of the step count N from x0."""
    import scipy.linalg as sla

    for name, v in (("barrier", barrier), ("width", width), ("eta", eta), ("batch", batch),
                    ("noise_scale", noise_scale), ("points_per_sigma", points_per_sigma)):
        _check_concrete_positive(name, v)
    if not x_exit_rel > 1.0:
        raise ValueError(f"x_exit_rel must be > 1 (beyond the barrier), got {x_exit_rel!r}")
    h = 6.0 * barrier / width**2
    if not eta * h < 2.0:
        raise ValueError(f"eta * U''(0) must be < 2 (stable SGD at the minimum), got eta={eta!r}, h={h!r}")
    sigma = eta * np.sqrt(noise_scale * h / batch)
    T = eta * noise_scale * h / (2.0 * batch)
    lo = -width * np.sqrt(40.0 * T / (3.0 * barrier))
    x_exit = x_exit_rel * width
    n = int(np.ceil((x_exit - lo) / sigma * points_per_sigma)) + 1
    if n > n_max:
        raise ValueError(f"the Nystrom grid needs {n} > n_max={n_max} points (sigma={sigma:.3g}); raise n_max")
    xs = np.linspace(lo, x_exit, n)
    wq = np.full(n, xs[1] - xs[0])
    wq[[0, -1]] *= 0.5
    Up = lambda y: barrier / width * (6.0 * (y / width) - 6.0 * (y / width) ** 2)

    def kernel(xa):
        mu = xa - eta * Up(xa)
        return np.exp(-0.5 * ((xs[None, :] - mu[:, None]) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi)) * wq[None, :]

    # step count N from x: E N = 1 + K E N, E N^2 = 1 + 2 K E N + K E N^2 (N = 1 + N' after one step)
    lu = sla.lu_factor(np.eye(n) - kernel(xs))
    m1 = sla.lu_solve(lu, np.ones(n))
    m2 = sla.lu_solve(lu, 1.0 + 2.0 * (m1 - 1.0))
    k0 = kernel(np.atleast_1d(float(x0)))[0]
    n1, n2 = 1.0 + k0 @ m1, 1.0 + 2.0 * (k0 @ m1) + k0 @ m2
    return (float(n1), float(n2)) if moments else float(eta * n1)


def renewal_tau_mean(num_steps, eta, n1, n2):
    """Expectation (to o(1) in the count) of the renewal estimator tau_hat = N eta / n(N) of the mean cycle time, for
    i.i.d. integer cycle lengths with E X = n1, E X^2 = n2: E n(N) = N/n1 + n2/(2 n1^2) + 1/(2 n1) - 1 (Feller)."""
    for name, v in (("num_steps", num_steps), ("eta", eta), ("n1", n1), ("n2", n2)):
        _check_concrete_positive(name, v)
    if not n1 >= 1.0 or not n2 >= n1**2:
        raise ValueError(f"need n1 >= 1 and n2 >= n1^2 (moments of a count >= 1), got n1={n1!r}, n2={n2!r}")
    return num_steps * eta / (num_steps / n1 + n2 / (2.0 * n1**2) + 1.0 / (2.0 * n1) - 1.0)


def adam_sde_loss(h, x0, sigma0, eps0, c1, t):
    """E[loss](t) of the Adam SDE (Malladi et al. 2022) on L = sum h_i x_i^2/2 with isotropic noise (Sigma = I), m(0) =
    u(0) = 0: dX = -m/(gamma1 (sigma0+eps0)) dt, dm = c1 (h X - m) dt + sigma0 c1 dW, gamma1 = 1 - exp(-c1 t).
    Second moments (Mxx, Mxm, Mmm) integrated with scipy (rtol 1e-10) from t0 = 1e-9 with their O(t0) series.
    h, x0: (d,); t: (n,) increasing SDE times -> (n,)."""
    from scipy.integrate import solve_ivp

    h, x0, t = np.asarray(h, float), np.asarray(x0, float), np.asarray(t, float)
    if h.ndim != 1 or x0.shape != h.shape:
        raise ValueError(f"h and x0 must be 1-D of equal length, got {h.shape} and {x0.shape}")
    for name, v in (("h", h), ("sigma0", sigma0), ("c1", c1)):
        _check_concrete_positive(name, v)
    S = sigma0 + eps0
    t0 = 1e-9

    def rhs(tt, y):
        xx, xm, mm = y.reshape(3, -1)
        g1 = -np.expm1(-c1 * tt)
        return np.concatenate([-2 * xm / (g1 * S), -mm / (g1 * S) + c1 * (h * xx - xm),
                               2 * c1 * (h * xm - mm) + sigma0**2 * c1**2])

    y0 = np.concatenate([x0**2, c1 * t0 * h * x0**2, (c1 * sigma0) ** 2 * t0 + (c1 * h * x0) ** 2 * t0**2])
    ts = np.maximum(t, t0)
    sol = solve_ivp(rhs, (t0, ts[-1]), y0, t_eval=ts, rtol=1e-10, atol=1e-13, method="LSODA")
    xx = sol.y[: len(h)].T
    out = 0.5 * xx @ h
    out[t <= 0] = 0.5 * np.sum(h * x0**2)
    return out
