"""Central path of the MSE UFM (Han, Papyan & Donoho 2022): closed forms vs independent numerics (scipy ODE solve,
lstsq vs normal equations, autodiff JVP vs the analytic derivative of W*(H)), the renormalised flow vs the closed-form
SNR dynamics, and bad input. Tolerances: float64 rounding (~1e-12 for well-conditioned solves), solver rtol."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp

import derivations.neural_collapse as th
import toymodels.neural_collapse as tm
from toymodels.flow import gradient_flow

K, N, D = 3, 4, 4
# the sympy identities (central_path_*, renormalized_*) run in tests/test_neural_collapse.py::test_identities_all_pass


@pytest.mark.parametrize("s0", [0.05, 0.7, 4.0])
def test_renormalized_snr_vs_scipy_ode(s0):
    Kc, n = 3, 12
    ts = np.linspace(0.0, 2000.0, 9)
    sol = solve_ivp(lambda t, s: 2 * s / (Kc * n * (1 + s) ** 2), (0, ts[-1]), [s0], t_eval=ts, rtol=1e-11, atol=1e-13)
    s = np.asarray(th.renormalized_snr(s0, ts, Kc, n))
    np.testing.assert_allclose(s, sol.y[0], rtol=1e-8)  # scipy rtol 1e-11 over ~100 steps


def test_least_squares_classifier_two_routes_and_loss_formula():
    key = jax.random.PRNGKey(3)
    H = jax.random.normal(key, (D, K * N)) + 0.5
    labels = tm.class_labels([N] * K)
    Y = tm.one_hot_targets(labels, K)
    for lam_W, lam_b in ((0.0, 0.0), (0.3, 0.1)):
        p = tm.least_squares_classifier(H, Y, lam_W, lam_b)  # lstsq on the augmented design
        Wt, A = th.ridge_ls_classifier(H, Y, lam_W, lam_b)  # normal equations
        np.testing.assert_allclose(np.asarray(Wt), np.column_stack([p["W"], p["b"]]), atol=1e-11)
    # unregularised central-path loss = 1/(2K) sum 1/(1+s_j)
    np.testing.assert_allclose(float(tm.central_path_loss(H, Y)),
                               float(th.central_path_loss_snr(tm.snr_eigvals(H, labels, K), K)), rtol=1e-12)


def test_adiabatic_deviation_vs_autodiff_jvp():
    k1, k2 = jax.random.split(jax.random.PRNGKey(5))
    H = jax.random.normal(k1, (D, K * N))
    Hdot = jax.random.normal(k2, (D, K * N))
    Y = tm.one_hot_targets(tm.class_labels([N] * K), K)
    lam_W, lam_b = 0.2, 0.05

    def wt(Hx):
        p = tm.least_squares_classifier(Hx, Y, lam_W, lam_b)
        return jnp.column_stack([p["W"], p["b"]])

    _, Wdot = jax.jvp(wt, (H,), (Hdot,))
    _, A = th.ridge_ls_classifier(H, Y, lam_W, lam_b)
    expected = -np.asarray(Wdot) @ np.linalg.inv(np.asarray(A))
    np.testing.assert_allclose(np.asarray(th.adiabatic_deviation(H, Hdot, Y, lam_W, lam_b)), expected, atol=1e-11)


def test_projected_field_moves_only_class_means():
    """Derived: the within-class part of -grad L* is normal to {Sigma_W = I}, so the projected field is
    (I + Sigma_B)^{-2} mubar_c / (K n) for every sample of class c."""
    H, labels = tm.renormalized_features(jax.random.PRNGKey(7), K, N, D, mean_scale=0.8)
    Y = tm.one_hot_targets(labels, K)
    V = np.asarray(tm.renormalized_central_path_field(labels, K)(0.0, H, Y))
    M, mu_G, _ = tm.class_means(H, labels, K)
    Mbar = np.asarray(M - mu_G[:, None])
    n = K * N
    expected = np.linalg.matrix_power(np.eye(D) + Mbar @ Mbar.T / K, -2) @ Mbar / (K * n)
    np.testing.assert_allclose(V, expected[:, np.asarray(labels)], atol=1e-13)


def test_renormalized_flow_matches_closed_form():
    H0, labels = tm.renormalized_features(jax.random.PRNGKey(11), K, N, D, mean_scale=0.5)
    Y = tm.one_hot_targets(labels, K)
    n = K * N
    ts = jnp.linspace(0.0, 20.0 * K * n, 6)
    res = gradient_flow(tm.renormalized_central_path_field(labels, K), H0, ts, args=Y,
                        observables=lambda H: tm.snr_eigvals(H, labels, K), rtol=1e-9, atol=1e-12)
    s = np.asarray(res.observables)
    s_th = np.asarray(th.renormalized_snr(s[0], np.asarray(ts)[:, None], K, n))
    np.testing.assert_allclose(s, s_th, rtol=1e-7)  # 100 x rtol
    assert s[-1, 0] / s[-1, -1] < s[0, 0] / s[0, -1]  # SNR equalises


def test_gradient_flow_slaved_to_central_path():
    """Along gradient flow of (W, b, H), ||D + X|| (D = Wt - Wt*(H), X = (dWt*/dt) A^{-1}) stays below the Groenwall
    bound propagated from t = 0, and the bound is small against ||D|| at the end (D is the slaved value -X)."""
    from sims.experiments.neural_collapse import _cp_proximity
    from toymodels.flow import negative_gradient

    Kc, Nc, lam = 3, 10, 1e-3
    Y = tm.one_hot_targets(tm.class_labels([Nc] * Kc), Kc)

    def loss(p):
        return tm.mse_loss(p, Y, lam, lam, 0.0)

    def obs(p):
        return {"Wt": jnp.column_stack([p["W"], p["b"]]), "H": p["H"], "Hdot": -jax.grad(loss)(p)["H"], "loss": loss(p)}

    ts = jnp.linspace(0.0, 200.0, 41)
    p0 = tm.init_params(jax.random.PRNGKey(2), Kc, D, Kc * Nc, scale=1.0)
    res = gradient_flow(negative_gradient(loss), p0, ts, observables=obs)
    o = {k: np.asarray(v) for k, v in res.observables.items()}
    pr = _cp_proximity(o["Wt"], o["H"], o["Hdot"], o["loss"], np.asarray(ts), np.asarray(Y), lam)
    assert np.all(pr["E"][1:] <= pr["bound"][1:])
    assert pr["bound"][-1] < 0.2 * pr["D"][-1] and pr["D"][-1] < 0.01 * pr["D"][0]
    assert pr["resid"].max() < 1e-9  # exact decomposition, float64 rounding


def test_bad_input():
    Y = tm.one_hot_targets(tm.class_labels([N] * K), K)
    H = jnp.ones((D, K * N))
    with pytest.raises(ValueError, match="s0"):
        th.renormalized_snr(-1.0, 1.0, 3, 12)
    with pytest.raises(ValueError, match="t"):
        th.renormalized_snr(1.0, -1.0, 3, 12)
    with pytest.raises(ValueError, match="K"):
        th.renormalized_snr(1.0, 1.0, 1, 12)
    with pytest.raises(ValueError, match="s"):
        th.central_path_loss_snr(jnp.ones(4), 3)
    with pytest.raises(ValueError, match="H must be"):
        th.ridge_ls_classifier(H[:, :5], Y)
    with pytest.raises(ValueError, match="lam_W"):
        th.ridge_ls_classifier(H, Y, -1.0)
    with pytest.raises(ValueError, match="Hdot"):
        th.adiabatic_deviation(H, H[:, :3], Y)
    with pytest.raises(ValueError, match="lam_b"):
        tm.least_squares_classifier(H, Y, 0.0, -0.5)
    with pytest.raises(ValueError, match="H must be"):
        tm.least_squares_classifier(H, Y[:, :3])
    with pytest.raises(ValueError, match="d <="):
        tm.renormalized_features(jax.random.PRNGKey(0), 3, 2, 5)
    with pytest.raises(ValueError, match="mean_scale"):
        tm.renormalized_features(jax.random.PRNGKey(0), 3, 4, 4, mean_scale=0.0)


@pytest.mark.slow
def test_central_path_experiment_quick_passes(results_dir):
    from sims.run import validate_experiment

    checks = validate_experiment("neural_collapse.central_path", quick=True, out=results_dir)
    failed = [(c.claim, c.error, c.tolerance) for c in checks if not c.passed]
    assert not failed, failed
