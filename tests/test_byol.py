"""BYOL / SimSiam / DirectPred linear dynamics (Tian, Chen & Ganguli 2021): theory vs simulation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import solve_ivp

from derivations import byol as th
from derivations.codegen import check_identities
from toymodels import byol as tm

S2 = 0.5


def test_identities():
    results = check_identities(th.IDENTITIES, "byol")
    bad = [(r.name, r.residual) for r in results if not r.passed]
    assert not bad, bad


def _random_state(key, n1=5, n2=3):
    ks = jax.random.split(key, 4)
    W = jax.random.normal(ks[0], (n2, n1))
    return tm.BYOLState(W=W, Wp=jax.random.normal(ks[1], (n2, n2)), Wa=jax.random.normal(ks[2], (n2, n1)),
                        F=W @ W.T)


def _random_cov(key, n):
    A = jax.random.normal(key, (n, n))
    return A @ A.T / n


def test_vector_field_is_stopgrad_gradient():
    # W' = -dJ/dW - eta W and Wp' = -alpha_p dJ/dWp - eta Wp with the target frozen (jax.grad of model.loss)
    k = jax.random.split(jax.random.PRNGKey(1), 3)
    X, Xp = _random_cov(k[0], 5), 0.3 * _random_cov(k[1], 5)
    model = tm.make_model(X, Xp, alpha_p=1.7, eta=0.13, beta=0.4)
    s = _random_state(k[2])
    g = jax.grad(model.loss)(s)
    d = tm.vector_field(0.0, s, model)
    np.testing.assert_allclose(d.W, -g.W - 0.13 * s.W, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(d.Wp, -1.7 * g.Wp - 0.13 * s.Wp, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(d.Wa, 0.4 * (s.W - s.Wa), rtol=1e-12, atol=1e-12)


def test_no_stopgrad_is_full_gradient():
    # without stop-gradient (target = W) the W flow is the full gradient through both branches
    k = jax.random.split(jax.random.PRNGKey(2), 3)
    X, Xp = _random_cov(k[0], 5), 0.3 * _random_cov(k[1], 5)
    model = tm.make_model(X, Xp, alpha_p=1.0, eta=0.0, beta=1.0, stop_grad=False, ema=False)
    s = _random_state(k[2])
    full = jax.grad(lambda W: model.loss(s._replace(W=W)))(s.W)
    np.testing.assert_allclose(tm.vector_field(0.0, s, model).W, -full, rtol=1e-12, atol=1e-12)


def test_balance_derivative():
    # d/dt (alpha W W^T - Wp^T Wp) = -2 eta (same), general X, X', Wa: evaluated from the vector field
    k = jax.random.split(jax.random.PRNGKey(3), 3)
    model = tm.make_model(_random_cov(k[0], 5), 0.5 * _random_cov(k[1], 5), alpha_p=2.3, eta=0.07, beta=0.9)
    s = _random_state(k[2])
    d = tm.vector_field(0.0, s, model)
    dB = 2.3 * (d.W @ s.W.T + s.W @ d.W.T) - (d.Wp.T @ s.Wp + s.Wp.T @ d.Wp)
    np.testing.assert_allclose(dB, -2 * 0.07 * tm.balance_matrix(s, 2.3), rtol=1e-11, atol=1e-11)


@pytest.mark.parametrize("eta,beta", [(0.05, 0.1), (0.12, 3.0)])
def test_fixed_point_stability_matches_autodiff_jacobian(eta, beta):
    # eigenvalues of jax.jacfwd of the toymodel eigenmode field at (p_+-, w, w) vs closed-form cubic roots
    alpha = 2.0
    for branch in (1, -1):
        p, w, a = (float(x) for x in th.fixed_point(eta, alpha, S2, branch))
        f = lambda y: jnp.stack(tm.eigenmode_vector_field(0.0, (y[0], y[1], y[2]), (alpha, eta, beta, S2)))  # noqa: E731
        y = jnp.array([p, w, a])
        np.testing.assert_allclose(f(y), 0.0, atol=1e-14)
        ev = np.sort_complex(np.linalg.eigvals(np.asarray(jax.jacfwd(f)(y))))
        ref = np.sort_complex(th.stability_eigenvalues(eta, beta, S2, branch))
        np.testing.assert_allclose(ev, ref, rtol=1e-9, atol=1e-12)
        # p_+ stable (all Re < 0), p_- a saddle (one Re > 0); Routh-Hurwitz agrees
        assert (np.max(ev.real) < 0) == (branch == 1)
        assert bool(th.is_stable(eta, beta, S2, branch)) == (branch == 1)


def test_matrix_flow_vs_eigenmode_theory():
    # aligned matrix flow (diffrax, rtol 1e-9) vs the sympy eigenmode ODE integrated by scipy (rtol 1e-11)
    alpha, eta, beta = 3.0, 0.06, 0.3
    p0 = np.array([0.02, 0.3, 0.9])
    w0 = np.array([0.05, 0.2, 0.4])
    state0, U, V = tm.aligned_init(jax.random.PRNGKey(0), 5, p0, w0, w0)
    model = tm.isotropic_model(5, S2, alpha, eta, beta)
    ts = np.linspace(0, 60, 13)
    res = tm.simulate(model, state0, ts, observables=lambda s: tm.mode_coordinates(s, U, V))
    f = th.mode_rhs_numpy()
    sol = solve_ivp(lambda t, y: np.concatenate(f(y[:3], y[3:6], y[6:], alpha, eta, beta, S2)), (0, 60),
                    np.concatenate([p0, w0, w0]), t_eval=ts, method="DOP853", rtol=1e-11, atol=1e-13)
    sim = np.concatenate([np.asarray(x) for x in res.observables], axis=1)
    # global error budget: 1e3 x rtol of the two integrators
    np.testing.assert_allclose(sim, sol.y.T, atol=1e-6)
    assert not bool(res.diverged)


def test_eigenmode_simulator_simsiam_closed_form():
    # SimSiam (target = W) from a balanced aligned start: matrix flow vs the exact t(p) of p' = -p (k p^2 - p + eta)
    eta, alpha = 0.04, 1.5
    p0 = np.array([0.2, 0.9])
    state0, U, V = tm.aligned_init(jax.random.PRNGKey(4), 3, p0, p0 / np.sqrt(alpha), p0 / np.sqrt(alpha))
    model = tm.isotropic_model(3, S2, alpha, eta, 1.0, ema=False)
    ts = np.linspace(0, 40, 9)
    res = tm.simulate(model, state0, ts, observables=lambda s: tm.mode_coordinates(s, U, V)[0])
    p = np.asarray(res.observables)
    t_thy = np.asarray(th.simsiam_time(p[1:], p0[None, :], eta, S2))
    # a state error dp (<= 1e3 x rtol |p|, rtol = 1e-9) shows up as a time error dp / |p'|
    pdot = np.abs(p[1:] * ((1 + S2) * p[1:] ** 2 - p[1:] + eta))
    tol = 1e-6 * np.abs(p[1:]) / pdot
    err = np.abs(t_thy - ts[1:, None])
    assert np.all(err <= tol), (err, tol)


def test_collapse_outcome_regions():
    eta = 0.05
    pm = float(th.fixed_point_p(eta, S2, -1))
    assert int(th.collapse_outcome(0.5 * pm, 0.9 * pm, 0.9 * pm, eta, S2)) == -1
    assert int(th.collapse_outcome(1.1 * pm, 1.2 * pm, 1.2 * pm, eta, S2)) == 1
    assert int(th.collapse_outcome(0.0, 1.5 * pm, 1.5 * pm, eta, S2)) == 0
    assert int(th.collapse_outcome(0.5, 0.9, 0.9, 1.1 * float(th.eta_critical(S2)), S2)) == -1


def test_fixed_predictor_propagator_matches_expm():
    from scipy.linalg import expm

    A = np.array([[-(1.5 * 1.21 + 0.02), 1.1], [0.5, -0.5]])
    np.testing.assert_allclose(np.asarray(th.fixed_predictor_matrix(1.1, 0.02, 0.5, S2)), A, rtol=1e-14)
    np.testing.assert_allclose(np.asarray(th.fixed_predictor_propagator(3.7, 1.1, 0.02, 0.5, S2)), expm(3.7 * A),
                               rtol=1e-12)


def test_bad_inputs():
    eye = jnp.eye(3)
    with pytest.raises(ValueError, match="beta"):
        tm.make_model(eye, eye, alpha_p=1.0, eta=0.1, beta=0.0)
    with pytest.raises(ValueError, match="alpha_p"):
        tm.make_model(eye, eye, alpha_p=-1.0, eta=0.1, beta=1.0)
    with pytest.raises(ValueError, match="eta"):
        tm.make_model(eye, eye, alpha_p=1.0, eta=-0.1, beta=1.0)
    with pytest.raises(ValueError, match="Xp"):
        tm.make_model(eye, -eye, alpha_p=1.0, eta=0.1, beta=1.0)
    with pytest.raises(ValueError, match="X"):
        tm.make_model(jnp.ones((3, 2)), eye, alpha_p=1.0, eta=0.1, beta=1.0)
    with pytest.raises(ValueError, match="predictor"):
        tm.make_model(eye, eye, alpha_p=1.0, eta=0.1, beta=1.0, predictor="mlp")
    with pytest.raises(ValueError, match="stop_grad"):
        tm.make_model(eye, eye, alpha_p=1.0, eta=0.1, beta=1.0, stop_grad=False, ema=True)
    with pytest.raises(ValueError, match="p0"):
        tm.aligned_init(jax.random.PRNGKey(0), 3, [jnp.nan, 1.0], [1.0, 1.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="n1"):
        tm.aligned_init(jax.random.PRNGKey(0), 1, [1.0, 1.0], [1.0, 1.0], [1.0, 1.0])
    model = tm.isotropic_model(3, 0.5, 1.0, 0.1, 1.0)
    s = tm.random_init(jax.random.PRNGKey(0), 3, 2)
    with pytest.raises(ValueError, match="ts"):
        tm.simulate(model, s, [1.0, 0.5])
    with pytest.raises(ValueError, match="columns"):
        tm.simulate(model, tm.random_init(jax.random.PRNGKey(0), 4, 2), [0.0, 1.0])
    with pytest.raises(ValueError, match="beta"):
        th.mode_rhs(0.1, 0.1, 0.1, 1.0, 0.1, -1.0, 0.5)
    with pytest.raises(ValueError, match="branch"):
        th.fixed_point_p(0.1, 0.5, branch=2)
    with pytest.raises(ValueError, match="eta"):
        th.simsiam_time(0.3, 0.2, 0.0, 0.5)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["byol.eigenmodes", "byol.phase_diagram", "byol.roles", "byol.directpred"])
def test_quick_validation(name, results_dir):
    from sims.run import validate_experiment

    checks = validate_experiment(name, quick=True, out=results_dir)
    failed = [(c.claim, c.error, c.tolerance) for c in checks if not c.passed]
    assert checks and not failed, failed


def test_collapse_phase_and_directpred_vs_theory():
    # one compiled matrix flow (switches are traced), reused for the trained predictor and max-normalised DirectPred
    eta, alpha, beta, n1 = 0.05, 2.0, 0.5, 5
    pm, pp = float(th.fixed_point_p(eta, S2, -1)), float(th.fixed_point_p(eta, S2, 1))
    u0 = np.array([0.5 * pm, 0.8 * pm, 1.3 * pm, 3.0 * pm])
    state0, U, V = tm.aligned_init(jax.random.PRNGKey(5), n1, u0, u0 / np.sqrt(alpha), u0 / np.sqrt(alpha))
    ts = np.linspace(0.0, 1000.0, 6)

    @jax.jit
    def run(model):
        res = tm.simulate(model, state0, ts, observables=lambda s: tm.mode_coordinates(s, U, V))
        return res.observables, res.diverged

    def model(predictor):
        return tm.isotropic_model(n1, S2, alpha, eta, beta, predictor=predictor, eps=0.1, running_F=False)

    (p, w, a), div = run(model("trained"))
    assert not bool(div)
    thy = np.asarray(th.collapse_outcome(u0, u0, u0, eta, S2))
    np.testing.assert_array_equal(thy, [-1, -1, 1, 1])
    u_end = np.sqrt(alpha) * np.asarray(w)[-1]
    # survivors at p_+ (Jacobian rates <= -0.01 over t = 1000), the others below 1e-6 (rate eta near 0)
    np.testing.assert_allclose(u_end[thy == 1], pp, atol=1e-6)
    np.testing.assert_allclose(np.asarray(p)[-1][thy == 1], pp, atol=1e-6)
    assert np.all(np.abs(u_end[thy == -1]) < 1e-6)

    (p, w, a), div = run(model("directpred"))
    assert not bool(div)
    w, a = np.asarray(w), np.asarray(a)
    j = int(np.argmax(u0))
    thy_top = np.array([(np.asarray(th.fixed_predictor_propagator(t, 1.1, eta, beta, S2)) @ [w[0, j], a[0, j]])[0]
                        for t in ts])
    np.testing.assert_allclose(w[:, j], thy_top, atol=1e-8 * abs(w[0, j]))
