"""sgd_sde family: sympy identities, closed forms vs independent solvers, Monte-Carlo vs theory, bad input.

Monte-Carlo checks use fixed seeds and pass within K = 4 standard errors (over independent paths).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg as sla

from derivations import sgd_sde as D
from derivations.codegen import check_identities
from toymodels import sgd_sde as T

K = 4.0


# ---------------------------------------------------------------------------------------------------------- theory
def test_identities_all_pass():
    results = check_identities(D.IDENTITIES, "sgd_sde")
    assert len(results) >= 10
    failed = [(r.name, r.residual) for r in results if not r.passed]
    assert not failed, failed


def test_order1_sme_has_nonzero_second_order_defect():
    # the order-2 identity is not vacuous: without the drift correction the eta^2 defect is -(1/2) f' f'' phi' != 0
    c1, c2 = D._local_weak_defect(1)
    assert c1 == 0 or D.sp.simplify(c1) == 0
    assert D.sp.simplify(c2) != 0


def test_spec_reference_numbers():
    # spec section 1: lambda = (1, 3), c = I, eta = 0.1, B = 1
    H, C = np.diag([1.0, 3.0]), np.eye(2)
    Sd = np.asarray(D.stationary_covariance(H, C, 0.1, 1.0))
    Sc = np.asarray(D.stationary_covariance(H, C, 0.1, 1.0, discrete=False))
    np.testing.assert_allclose(np.diag(Sd), [0.0526316, 0.0196078], atol=5e-8)
    np.testing.assert_allclose(np.diag(Sc), [0.05, 0.0166667], atol=5e-8)


def test_lyapunov_vs_scipy_noncommuting():
    rng = np.random.default_rng(1)
    A = rng.standard_normal((4, 4))
    H = A @ A.T / 4 + 0.3 * np.eye(4)
    G = rng.standard_normal((4, 4))
    C = G @ G.T
    eta, B = 0.9 / np.linalg.eigvalsh(H).max(), 3.0
    Sd = np.asarray(D.stationary_covariance(H, C, eta, B))
    Ref = sla.solve_discrete_lyapunov(np.eye(4) - eta * H, eta**2 * C / B)
    np.testing.assert_allclose(Sd, Ref, rtol=1e-9, atol=1e-12)
    Sc = np.asarray(D.stationary_covariance(H, C, eta, B, discrete=False))
    np.testing.assert_allclose(Sc, sla.solve_continuous_lyapunov(H, eta * C / B), rtol=1e-9, atol=1e-12)


def test_kronecker_solver_vs_commuting_closed_form():
    lams = np.array([0.5, 1.0, 2.5])
    rng = np.random.default_rng(2)
    G = rng.standard_normal((3, 3))
    C = G @ G.T
    for discrete in (True, False):
        a = np.asarray(D.stationary_covariance(np.diag(lams), C, 0.3, 2.0, discrete=discrete))
        b = np.asarray(D.commuting_covariance(lams, C, 0.3, 2.0, discrete=discrete))
        np.testing.assert_allclose(a, b, rtol=1e-10)


def test_learning_curve_closed_form_vs_recursion():
    # eigh closed form of the diagonal closure vs the iterated d^2 recursion in a rotated basis (rtol 1e-9)
    d = 5
    lam = np.arange(1, d + 1) ** -1.3
    U = np.linalg.qr(np.random.default_rng(3).standard_normal((d, d)))[0]
    c0 = np.linspace(1.0, 0.2, d)
    E0 = U @ np.diag(c0) @ U.T  # diagonal in the eigenbasis (off-diagonals do not feed the loss)
    Sigma = U @ np.diag(lam) @ U.T
    _, full = D.moment_recursion(Sigma, E0, 0.4, 3, 0.05, 60, 3)
    closed = D.learning_curve(lam, c0, 0.4, 3, 0.05, np.arange(0, 61, 3))
    np.testing.assert_allclose(np.asarray(full), np.asarray(closed), rtol=1e-9)


def test_ms_threshold_matches_1d_formula():
    for B in (1, 2, 7, 32):
        assert D.ms_threshold([1.7], B) == pytest.approx(float(D.ms_threshold_1d(1.7, B)), rel=1e-9)
    # rho crosses 1 at the threshold
    lam = np.linspace(0.5, 1.5, 6)
    e = D.ms_threshold(lam, 4)
    assert float(D.ms_spectral_radius(lam, 0.99 * e, 4)) < 1 < float(D.ms_spectral_radius(lam, 1.01 * e, 4))


def test_full_second_moment_operator_radius_equals_closure_radius():
    # spectral radius of the d^2-dimensional linear map E -> E' (sigma = 0, the spec's formula written out here),
    # equals rho of the d x d diagonal closure (off-diagonal modes never grow faster: Cauchy-Schwarz)
    lam = np.array([1.2, 0.7, 0.3])
    for eta, B in ((0.5, 1), (1.1, 4), (0.2, 2)):
        d = len(lam)
        cols = []
        for k in range(d * d):
            E = np.zeros(d * d)
            E[k] = 1.0
            E = E.reshape(d, d)
            E = 0.5 * (E + E.T)  # the map is linear; symmetric inputs span the invariant subspace
            A = np.eye(d) - eta * np.diag(lam)
            S = np.diag(lam)
            cols.append((A @ E @ A + eta**2 / B * (S @ E @ S + S * np.trace(S @ E))).ravel())
        M = np.array(cols).T
        rho_full = np.max(np.abs(np.linalg.eigvals(M)))
        assert rho_full == pytest.approx(float(D.ms_spectral_radius(lam, eta, B)), rel=1e-10)


def test_sqrt_rule_keeps_sde_constants():
    base = D.sde_constants(50.0, 0.02, 4e-4, 5.0)
    for kap in (2, 4, 16):
        e, omb, eps = D.sqrt_scaling(kap, 0.02, 4e-4, 5.0)
        np.testing.assert_allclose(D.sde_constants(50.0 / np.sqrt(kap), e, omb, eps), base, rtol=1e-12)
        e, omb, eps = D.linear_scaling(kap, 0.02, 4e-4, 5.0)
        assert not np.allclose(D.sde_constants(50.0 / np.sqrt(kap), e, omb, eps), base)


# ---------------------------------------------------------------------------------------------------------- MC vs theory
def test_sgd_ou_covariance_vs_discrete_lyapunov():
    H = np.array([[1.0, 0.3], [0.3, 3.0]])
    C = np.array([[1.0, 0.4], [0.4, 2.0]])
    eta, B = 0.3, 2.0
    r = T.quadratic_sgd_covariance(H, C, eta, B, jax.random.PRNGKey(0), n_paths=300, num_steps=1500, burn_in=200)
    Sd = np.asarray(D.stationary_covariance(H, C, eta, B))
    Sc = np.asarray(D.stationary_covariance(H, C, eta, B, discrete=False))
    z = np.abs(np.asarray(r["cov"]) - Sd) / np.asarray(r["cov_sem"])
    assert z.max() < K, z
    # and the MC resolves the O(eta) error of the SDE covariance (its (2,2) entry is ~20% off at eta*lam = 0.9)
    assert abs(float(r["cov"][1, 1]) - Sc[1, 1]) > K * float(r["cov_sem"][1, 1])


def test_sde_ensemble_vs_continuous_lyapunov():
    H = np.array([[1.0, 0.3], [0.3, 3.0]])
    C = np.array([[1.0, 0.4], [0.4, 2.0]])
    eta, B, dt = 0.2, 1.0, 0.01
    r = T.quadratic_sde_covariance(H, C, eta, B, jax.random.PRNGKey(1), dt=dt, num_steps=800, n_paths=2000)
    Sc = np.asarray(D.stationary_covariance(H, C, eta, B, discrete=False))
    em_bias = np.abs(np.asarray(D.stationary_covariance(H, C, dt, B * dt / eta)) - Sc)  # EM at step dt
    assert np.all(np.abs(np.asarray(r["cov"]) - Sc) <= K * np.asarray(r["cov_sem"]) + em_bias)


def test_least_squares_sgd_vs_moment_recursion():
    d = 4
    lam = np.array([1.0, 0.5, 0.25, 0.125])
    U = np.linalg.qr(np.random.default_rng(0).standard_normal((d, d)))[0]
    Sigma = U @ np.diag(lam) @ U.T
    w_star = U @ np.array([1.0, -0.5, 0.3, 0.2])
    eta, B, s = 0.3, 4, 0.2
    r = T.least_squares_sgd(Sigma, w_star, s, eta, B, jax.random.PRNGKey(2), n_paths=2000, num_steps=40, save_every=5)
    _, L = D.moment_recursion(Sigma, np.outer(w_star, w_star), eta, B, s**2, 40, 5)
    L = np.asarray(L)
    assert np.asarray(r["loss"])[0] == pytest.approx(L[0], rel=1e-12)  # deterministic start
    z = np.abs(np.asarray(r["loss"])[1:] - L[1:]) / np.asarray(r["loss_sem"])[1:]
    assert z.max() < K, z


def test_sme_weak_errors_shrink_with_eta():
    etas = jnp.array([1 / 8, 1 / 16, 1 / 32])
    f = jax.jit(jax.vmap(lambda e, k: T.sme_coupled(e, k, x0=2.0, t_max=1.0, n_fine=256, n_paths=3000)))
    r = f(etas, jax.vmap(jax.random.PRNGKey)(jnp.arange(3)))
    e1, s1, e2, s2 = (np.asarray(r[k]) for k in ("err1", "err1_sem", "err2", "err2_sem"))
    # order 1: halving eta halves the error (ratio 2 within 25% pre-asymptotic allowance + K SE)
    for i in range(2):
        ratio = e1[i] / e1[i + 1]
        ratio_se = ratio * np.hypot(s1[i] / e1[i], s1[i + 1] / e1[i + 1])
        assert abs(ratio - 2.0) < 0.5 + K * ratio_se, (ratio, ratio_se)
    # order 2 beats order 1 by more than K SE at every eta
    assert np.all(np.abs(e2) + K * np.hypot(s1, s2) < np.abs(e1))


def test_rmsprop_sqrt_rule_collapse_small():
    h, x0, s, eta, c, eps = np.array([1.0, 4.0]), np.array([1.0, 1.0]), 50.0, 0.02, 1.0, 5.0
    K_steps, saves = 1600, 4
    out = {}
    for kap in (1, 16):
        e, omb, ep = D.sqrt_scaling(kap, eta, c * eta**2, eps)
        n = K_steps // kap
        out[kap] = T.adaptive_noisy_quadratic("rmsprop", h, s, e, omb, ep, float(kap), jax.random.PRNGKey(kap),
                                              n_paths=500, num_steps=n, save_every=n // saves, x0=x0, v0=s**2 / kap)
        e, omb, ep = D.linear_scaling(kap, eta, c * eta**2, eps)
        out[-kap] = T.adaptive_noisy_quadratic("rmsprop", h, s, e, omb, ep, float(kap), jax.random.PRNGKey(100 + kap),
                                               n_paths=500, num_steps=n, save_every=n // saves, x0=x0, v0=s**2 / kap)
    z = lambda a, b: np.abs(np.asarray(a["loss"]) - b["loss"])[1:] / np.hypot(a["loss_sem"], b["loss_sem"])[1:]
    assert z(out[1], out[16]).max() < K
    assert z(out[-1], out[-16]).max() > K


# ---------------------------------------------------------------------------------------------------------- bad input
def test_bad_input_theory():
    H, C = np.diag([1.0, 2.0]), np.eye(2)
    with pytest.raises(ValueError, match="H"):
        D.stationary_covariance(np.ones((2, 3)), C, 0.1, 1)
    with pytest.raises(ValueError, match="eta"):
        D.stationary_covariance(H, C, -0.1, 1)
    with pytest.raises(ValueError, match="batch_size"):
        D.stationary_covariance(H, C, 0.1, 0)
    with pytest.raises(ValueError, match="C"):
        D.stationary_covariance(H, np.diag([1.0, -1.0]), 0.1, 1)
    with pytest.raises(ValueError, match="eta"):
        D.stationary_covariance(H, C, 1.5, 1)  # rho(I - eta H) >= 1: no stationary covariance
    with pytest.raises(ValueError, match="H"):
        D.stationary_covariance(np.array([[1.0, np.nan], [np.nan, 1.0]]), C, 0.1, 1)
    with pytest.raises(ValueError, match="num_steps"):
        D.moment_recursion(H, C, 0.1, 1, 0.0, 10, 3)
    with pytest.raises(ValueError, match="lams"):
        D.learning_curve(np.array([1.0, -1.0]), np.ones(2), 0.1, 1, 0.0, np.arange(3))


def test_bad_input_simulators():
    H, C, key = np.diag([1.0, 2.0]), np.eye(2), jax.random.PRNGKey(0)
    with pytest.raises(ValueError, match="H"):
        T.quadratic_sgd_covariance(np.array([[1.0, 0.5], [0.0, 1.0]]), C, 0.1, 1, key, n_paths=4, num_steps=4,
                                   burn_in=1)
    with pytest.raises(ValueError, match="burn_in"):
        T.quadratic_sgd_covariance(H, C, 0.1, 1, key, n_paths=4, num_steps=4, burn_in=4)
    with pytest.raises(ValueError, match="eta"):
        T.quadratic_sde_covariance(H, C, 0.0, 1, key, dt=0.1, num_steps=20, n_paths=4)
    with pytest.raises(ValueError, match="batch_size"):
        T.least_squares_sgd(H, np.ones(2), 0.1, 0.1, 0, key, n_paths=4, num_steps=2)
    with pytest.raises(ValueError, match="w_star"):
        T.least_squares_sgd(H, np.ones(3), 0.1, 0.1, 1, key, n_paths=4, num_steps=2)
    with pytest.raises(ValueError, match="w0"):
        T.least_squares_sgd(H, np.ones(2), 0.1, 0.1, 1, key, n_paths=4, num_steps=2, w0=np.array([np.nan, 0.0]))
    with pytest.raises(ValueError, match="eta"):
        T.sme_coupled(0.3, key, x0=1.0, t_max=1.0, n_fine=64, n_paths=4)
    with pytest.raises(ValueError, match="kind"):
        T.adaptive_noisy_quadratic("sgd", np.ones(2), 1.0, 0.1, 0.1, 1e-8, 1.0, key, n_paths=4, num_steps=2,
                                   save_every=1, x0=np.ones(2))
    with pytest.raises(ValueError, match="one_minus_beta1"):
        T.adaptive_noisy_quadratic("adam", np.ones(2), 1.0, 0.1, 0.1, 1e-8, 1.0, key, n_paths=4, num_steps=2,
                                   save_every=1, x0=np.ones(2))


# ---------------------------------------------------------------------------------------------------------- experiments
@pytest.mark.slow
@pytest.mark.parametrize("name", ["sgd_sde.ou_covariance", "sgd_sde.learning_curves", "sgd_sde.stability",
                                  "sgd_sde.sme_weak_error", "sgd_sde.sqrt_scaling", "sgd_sde.escape",
                                  "sgd_sde.escape_batch"])
def test_quick_validation(name, results_dir):
    from sims.run import validate_experiment

    checks = validate_experiment(name, quick=True, out=results_dir, progress=False)
    failed = [(c.claim, c.theory, c.simulated, c.error, c.tolerance) for c in checks if not c.passed]
    assert checks and not failed, failed


def test_rmsprop_sde_closed_form_limits_and_bad_input():
    h, x0 = np.array([1.0, 4.0]), np.array([1.0, 1.0])
    L = np.asarray(D.rmsprop_sde_loss(h, x0, 1.0, 0.1, np.array([0.0, 1e3])))
    assert L[0] == pytest.approx(0.5 * np.sum(h * x0**2), rel=1e-14)
    # stationary OU variance s^2/(2a) per coordinate: loss sum_i h_i s^2/(4 a_i) = d s^2 (sigma0+eps0)/4
    assert L[1] == pytest.approx(2 * (1.0 / 1.1) ** 2 * 1.1 / 4, rel=1e-12)
    with pytest.raises(ValueError, match="sigma0"):
        D.rmsprop_sde_loss(h, x0, 0.0, 0.1, np.array([1.0]))
    with pytest.raises(ValueError, match="x0"):
        D.rmsprop_sde_loss(h, np.ones(3), 1.0, 0.1, np.array([1.0]))


def test_exact_mfpt_vs_scipy_quad_and_kramers_limit():
    from scipy.integrate import quad

    dU, w, T = 0.7, 1.3, 0.35
    U = lambda y: dU * (3 * (y / w) ** 2 - 2 * (y / w) ** 3)
    inner = lambda y: quad(lambda z: np.exp(-U(z) / T), -np.inf, y, limit=200)[0]
    ref = quad(lambda y: np.exp(U(y) / T) * inner(y) / T, 0.0, 1.5 * w, limit=200)[0]
    assert D.exact_mfpt(dU, w, T) == pytest.approx(ref, rel=1e-5)
    # Kramers' law is the T -> 0 asymptote: its relative error shrinks with the barrier (O(T/dU) corrections)
    errs = [abs(float(D.kramers_time(dU, w, dU / r)) / D.exact_mfpt(dU, w, dU / r) - 1) for r in (2.0, 5.0, 12.0)]
    assert errs[0] > errs[1] > errs[2] and errs[2] < 0.05


def test_escape_renewal_vs_exact_mfpt_small():
    dU, w, r = 0.1, np.sqrt(0.1), 1.0
    out = T.escape_renewal(dU, w, dU / r, 1.0 / 600, jax.random.PRNGKey(5), n_paths=400, num_steps=4000)
    exact = D.exact_mfpt(dU, w, dU / r)
    # K SE + discrete-monitoring allowance 0.5826 sqrt(2 T dt) on the exit boundary + O(h dt) temperature shift
    shift = 0.5826 * np.sqrt(2 * (dU / r) * (1.0 / 600)) / w
    allow = abs(D.exact_mfpt(dU, w, dU / r, x_exit_rel=1.5 + shift) - exact) + exact * (6 / 600 / 2) * 1.0
    assert abs(float(out["tau"]) - exact) < K * float(out["tau_sem"]) + allow


def test_bad_input_escape():
    key = jax.random.PRNGKey(0)
    with pytest.raises(ValueError, match="temperature"):
        T.escape_renewal(0.1, 0.3, -1.0, 0.01, key, n_paths=4, num_steps=4)
    with pytest.raises(ValueError, match="x_exit_rel"):
        T.escape_renewal(0.1, 0.3, 0.1, 0.01, key, n_paths=4, num_steps=4, x_exit_rel=0.5)
    with pytest.raises(ValueError, match="barrier"):
        D.exact_mfpt(0.0, 1.0, 0.1)


def test_adam_sde_moments_reach_lyapunov_stationary_value():
    # at large t (gamma1 -> 1) the Adam SDE per coordinate is linear, d(x, m) = A (x, m) dt + G dW, so E x^2 tends to
    # the continuous Lyapunov solution A P + P A^T + G G^T = 0 (scipy), independent of the moment-ODE integration
    h, x0, s0, e0, c1 = np.array([1.0, 4.0]), np.array([1.0, -2.0]), 1.0, 0.1, 4.0
    L = D.adam_sde_loss(h, x0, s0, e0, c1, np.array([0.0, 0.5, 60.0]))
    assert L[0] == pytest.approx(0.5 * np.sum(h * x0**2), rel=1e-14)
    stat = 0.0
    for hi in h:
        A = np.array([[0.0, -1.0 / (s0 + e0)], [c1 * hi, -c1]])
        G = np.array([[0.0], [s0 * c1]])
        P = sla.solve_continuous_lyapunov(A, -G @ G.T)
        stat += 0.5 * hi * P[0, 0]
    assert L[2] == pytest.approx(stat, rel=1e-7)
