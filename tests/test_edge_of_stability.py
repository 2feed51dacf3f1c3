"""Edge of stability: sympy identities, closed forms vs simulation (scalar networks, uv catapult, self-stabilisation),
sharpness (eigvalsh / Lanczos / shifted power), and bad-input errors. Reference numbers come from the spec
(diagonal_linear_and_scalar_eos.md, part B) or from independent computations (scipy root finding, numpy eigh)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import brentq

from derivations import edge_of_stability as th
from derivations.codegen import check_identities
from toymodels import edge_of_stability as tm


def test_identities_all_pass():
    results = check_identities(th.IDENTITIES, "edge_of_stability")
    failed = [(r.name, r.residual) for r in results if not r.passed]
    assert not failed, failed
    assert len(results) >= 20


# ---------------------------------------------------------------- closed forms vs independent computations


def _c_brentq(w, y):
    """Independent root of prod(w_i^2 + c) = y^2 by scipy brentq on the bracket (-min w^2, y^(2/D))."""
    w2 = np.asarray(w) ** 2
    g = lambda c: np.sum(np.log(w2 + c)) - 2 * np.log(abs(y))  # noqa: E731
    lo = -w2.min() * (1 - 1e-15) + 1e-300
    hi = abs(y) ** (2 / len(w2)) - w2.min() + 1.0
    return brentq(g, lo, hi, xtol=1e-15, rtol=1e-15)


@pytest.mark.parametrize("depth", [2, 3, 4, 5])
@pytest.mark.parametrize("y", [1.0, 2.0])
def test_gfs_sharpness_vs_brentq(depth, y):
    rng = np.random.default_rng(depth)
    W = rng.choice([-1, 1], (8, depth)) * rng.uniform(0.05, 3.0, (8, depth))
    c = np.array([_c_brentq(w, y) for w in W])
    phi_ref = y**2 * np.sum(1 / (W**2 + c[:, None]), axis=1)
    np.testing.assert_allclose(np.asarray(th.gfs_sharpness(jnp.asarray(W), y)), phi_ref, rtol=1e-11)
    np.testing.assert_allclose(np.asarray(th.gfs_squares(jnp.asarray(W), y)), W**2 + c[:, None], rtol=1e-11)


def test_gfs_sharpness_depth2_closed_form_and_padding():
    rng = np.random.default_rng(0)
    w = rng.uniform(0.1, 3, (50, 2))
    np.testing.assert_allclose(np.asarray(th.gfs_sharpness(jnp.asarray(w))),
                               np.sqrt((w[:, 0] ** 2 - w[:, 1] ** 2) ** 2 + 4), rtol=1e-12)
    # padding: a masked coordinate must not enter the GFS
    wp = np.concatenate([w, 7.0 * np.ones((50, 1))], axis=1)
    mask = np.array([True, True, False])
    np.testing.assert_allclose(np.asarray(th.gfs_sharpness(jnp.asarray(wp), 1.0, mask)),
                               np.asarray(th.gfs_sharpness(jnp.asarray(w))), rtol=1e-13)


def test_gfs_spec_reference_values():
    # spec B.3.2 lists w to 3 decimals and phi to 10 digits: agreement to the rounding of w (relative 1e-3)
    assert float(th.gfs_sharpness(jnp.array([1.383, 0.759]))) == pytest.approx(2.4055708323, rel=1e-3)
    assert float(th.gfs_sharpness(jnp.array([1.687, 0.305, 1.758, 0.357]))) == pytest.approx(6.9824334468, rel=1e-3)
    assert float(th.gfs_sharpness(jnp.array([1.4, 1.346, 0.952, 1.995, 1.967]), 2.0)) == pytest.approx(25.0440019648,
                                                                                                        rel=1e-3)
    # B.3.4: D = 4, w0 = (5, 5, 0.05, 0.05), eta = 0.05: eta phi0 / 2 = 1.2539
    assert 0.05 * float(th.gfs_sharpness(jnp.array([5.0, 5.0, 0.05, 0.05]))) / 2 == pytest.approx(1.2539, abs=5e-5)
    assert th.min_gfs_sharpness(4, 1.0) == 4.0


# ---------------------------------------------------------------- claim 1: conservation / exact GD factor


def test_one_gd_step_pair_factor():
    # spec B.3.1 reference point: w = (0.7, 1.3, 1.9, 0.5), eta = 0.3: ratios equal the formula to 15 digits
    w = jnp.array([0.7, 1.3, 1.9, 0.5])
    eta = 0.3
    w1 = tm.scalar_gd_step(eta)(w, 0)
    r = float(jnp.prod(w) - 1)
    fac = np.asarray(th.gd_pair_factor(w, r, eta))
    w, w1 = np.asarray(w), np.asarray(w1)
    for i in range(4):
        for j in range(i + 1, 4):
            ratio = (w1[i] ** 2 - w1[j] ** 2) / (w[i] ** 2 - w[j] ** 2)
            assert ratio == pytest.approx(fac[i, j], rel=1e-13)


def test_gradient_flow_conserves_and_reaches_gfs():
    w0 = jnp.array([1.3, -0.6, 0.9])
    res = tm.run_scalar_gf(w0, jnp.array([0.0, 0.3, 40.0]))
    assert not bool(res.diverged) and not bool(res.failed)
    wmid, wT = np.asarray(res.observables["w"][1]), np.asarray(res.observables["w"][2])
    d0 = np.asarray(w0) ** 2
    # rtol = 1e-10 (Tsit5): conservation and limit to 1e-7
    np.testing.assert_allclose(wmid**2 - wmid[0] ** 2, d0 - d0[0], atol=1e-7)
    np.testing.assert_allclose(wT**2, np.asarray(th.gfs_squares(w0)), rtol=1e-7)
    assert float(res.observables["sharpness"][2]) == pytest.approx(float(th.gfs_sharpness(w0)), rel=1e-7)


# ---------------------------------------------------------------- claims 3, 4: GD and the edge of stability


def test_gfs_sharpness_monotone_along_gd_and_final_below_2_over_eta():
    eta, K = 0.1, 3000
    s = tm.manifold_point(1.05 * 2 / eta, 3, 3)
    assert 0.1 * float(th.gfs_sharpness(s)) / 2 == pytest.approx(1.05, rel=1e-10)
    w0 = s.at[1].multiply(1.001)
    res = tm.run_scalar_gd(w0, eta, K, save_every=1)
    phi = np.asarray(th.gfs_sharpness(res.observables["w"]))
    assert np.all(np.diff(phi) <= 1e-12 * phi[:-1])  # never increases (beyond root-solve accuracy)
    S = eta * float(res.observables["sharpness"][-1]) / 2
    rho0 = eta * phi[0] / 2
    assert float(res.observables["loss"][-1]) < 1e-20
    assert S <= 1.0
    assert abs(S - (2 - rho0)) <= 3 * (rho0 - 1) ** 2  # symmetric overshoot, second-order remainder
    # the sharpness itself oscillated above 2/eta on the way (EoS), unlike phi
    assert np.max(eta * np.asarray(res.observables["sharpness"]) / 2) > 1.0


def test_tied_depth4_gap_spec_reference():
    # spec B.3.4(b): eta = 0.1, relative gap 1 - eta S_inf/2 = 2.307e-3 (any rho0 in (1, 2))
    eta = 0.1
    s = np.sqrt(0.05**2 + np.sqrt((1.3 / eta) ** 2 - 4.0))  # eta phi0/2 = 1.3 for (s, s, 0.05, 0.05)
    w0 = jnp.array([s, s, 0.05, 0.05])
    assert eta * float(th.gfs_sharpness(w0)) / 2 == pytest.approx(1.3, rel=1e-10)
    res = tm.run_scalar_gd(w0, eta, 20000, save_every=20000)
    gap = 1 - eta * float(th.gfs_sharpness(res.final)) / 2
    assert float(res.observables["loss"][-1]) < 1e-20
    assert gap == pytest.approx(2.307e-3, abs=1e-6)
    assert abs(gap / th.gap_law(eta) - 1) <= 10 * eta**2


def test_minimalist_tied_equals_untied():
    # GD on l(x, y) = (x^2 y^2 - 1)^2 / 4 equals GD on the D=4 network from (x, x, y, y), bit for bit up to rounding
    eta = 0.05
    ell = lambda p: 0.25 * (p[0] ** 2 * p[1] ** 2 - 1) ** 2  # noqa: E731
    g = jax.grad(ell)
    step = tm.scalar_gd_step(eta)

    @jax.jit
    def run(p, w):
        return jax.lax.fori_loop(0, 500, lambda k, s: (s[0] - eta * g(s[0]), step(s[1], k)), (p, w))

    p, w = run(jnp.array([5.0, 0.05]), jnp.array([5.0, 5.0, 0.05, 0.05]))
    np.testing.assert_allclose(np.asarray(w), np.asarray([p[0], p[0], p[1], p[1]]), rtol=1e-12)


# ---------------------------------------------------------------- claim 5: catapult (uv model)


@pytest.mark.parametrize("a0", [1.5, 3.0, 4.5])
def test_uv_full_width_matches_reduced_map(a0):
    n, K = 64, 400
    eta = a0 / 2
    p0 = tm.uv_init(n, 2.0, 1.0, jax.random.PRNGKey(3))
    assert float(tm.uv_curvature(p0)) == pytest.approx(2.0, rel=1e-13)
    assert float(tm.uv_output(p0)) == pytest.approx(1.0, rel=1e-13)
    res = tm.run_uv_gd(p0, eta, K)
    fm, lm = th.uv_map_trajectory(1.0, 2.0, eta, n, K)
    valid = np.asarray(res.valid) & np.isfinite(fm) & (np.abs(fm) < 1e6)
    f, lam = np.asarray(res.observables["f"]), np.asarray(res.observables["lam"])
    np.testing.assert_allclose(f[valid], fm[valid], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(lam[valid], lm[valid], rtol=1e-9)
    if a0 < 2:
        assert not bool(res.diverged) and abs(eta * lam[-1] - a0) < 0.1
    elif a0 < 4:
        assert not bool(res.diverged) and eta * lam[-1] < 2 and np.max(np.asarray(res.observables["loss"])) > 1.0
    else:
        assert bool(res.diverged)


def test_uv_padding_equals_unpadded():
    key = jax.random.PRNGKey(0)
    p_pad = tm.uv_init(40, 2.0, 1.0, key, nmax=64)
    assert float(jnp.abs(p_pad[:, 40:]).max()) == 0.0
    r_pad = tm.run_uv_gd(p_pad, 1.4, 200, n=40)
    r = tm.run_uv_gd(p_pad[:, :40], 1.4, 200)
    np.testing.assert_allclose(np.asarray(r_pad.observables["lam"]), np.asarray(r.observables["lam"]), rtol=1e-12)


# ---------------------------------------------------------------- claim 6: self-stabilisation


def test_self_stabilisation_average_and_invariant():
    eta, al, be = 1e-3, 1.0, 2.0
    K = 100_000
    res = tm.run_self_stab(0.5, 0.0, eta, al, be, K, save_every=1)
    s = np.asarray(res.observables)
    x2, yv = s[:-1, 0] ** 2, s[:, 1]
    # exact telescoping identity: <x^2> = 2 alpha/beta - 2 (y_K - y_0) / (beta eta K)
    assert np.mean(x2) == pytest.approx(2 * al / be - 2 * (yv[-1] - yv[0]) / (be * eta * K), abs=1e-9)
    assert abs(np.mean(x2) - th.lv_fixed_point_x2(al, be)) <= 2 * np.max(np.abs(yv)) / (be * eta * K)
    H = np.asarray(th.lv_invariant(s[:, 0] ** 2, yv, al, be))
    # O(eta) drift over tau = 100: spec B.3.7 reports ~18 % over 200 time units at eta = 1e-3
    assert abs(H[-1] - H[0]) / H[0] < 0.2
    # sharpness 2/eta + y oscillates symmetrically about 2/eta
    assert abs(np.mean(yv)) < 0.05 and np.max(yv) > 0.5 and np.min(yv) < -0.5


# ---------------------------------------------------------------- claim 7: sharpness


def _sym_with_spectrum(lams, seed=0):
    d = len(lams)
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
    return (q * lams) @ q.T


def test_lanczos_largest_algebraic_on_symmetric_spectrum():
    # lambda_max ~ -lambda_min (spec B.5 / A.5): 'LM' or plain power iteration can return the wrong end
    lams = np.concatenate([np.linspace(-1.0005, -0.2, 100), np.linspace(-0.1, 1.0, 100)])
    A = jnp.asarray(_sym_with_spectrum(lams))
    lams2 = np.concatenate([[-2.0], np.linspace(-0.5, 1.0, 49)])
    B = jnp.asarray(_sym_with_spectrum(lams2, 1))
    v0 = jax.random.normal(jax.random.PRNGKey(1), (200,))

    @jax.jit
    def run(A, B, v0):
        return (tm.lanczos_max_eig(lambda v: A @ v, v0, 120),
                # the largest-magnitude eigenvalue of B is the negative one
                tm.lanczos_max_eig(lambda v: B @ v, v0[:50], 50),
                # shifted power method on B + 2.5 I: rate (lam_2 + c)/(lam_1 + c) = 3.469/3.5 per step
                tm.power_max_eig(lambda v: B @ v, v0[:50], 2.5, 3000))

    la, lb, pb = run(A, B, v0)
    assert float(la) == pytest.approx(float(np.linalg.eigvalsh(np.asarray(A))[-1]), abs=1e-8)
    assert float(lb) == pytest.approx(1.0, abs=1e-10)
    assert float(pb) == pytest.approx(1.0, abs=1e-8)


def test_lanczos_vs_eigvalsh_on_hessians():
    # scalar network off the manifold (negative eigenvalues from r Hess f) and the uv model with r != 0 / r = 0
    w = jnp.array([0.3, 1.7, -0.8, 1.1, 0.6])
    loss = lambda v: tm.scalar_net_loss(v)  # noqa: E731
    uvl = lambda q: tm.uv_loss(q.reshape(2, 30), 0.0)  # noqa: E731
    p = tm.uv_init(30, 2.0, 3.0, jax.random.PRNGKey(0)).reshape(-1)
    pm = tm.uv_init(30, 2.0, 0.0, jax.random.PRNGKey(2)).reshape(-1)
    key = jax.random.PRNGKey(1)

    @jax.jit
    def run(w, p, pm):
        return (jax.hessian(loss)(w), tm.hessian_sharpness(loss, w), tm.lanczos_max_eig(tm.hvp_fn(loss, w), jnp.ones(5), 5),
                jax.hessian(uvl)(p), tm.lanczos_max_eig(tm.hvp_fn(uvl, p), jnp.ones(60), 30, key),
                # at a minimum the Hessian is grad f grad f^T, |grad f|^2 = lambda: Lanczos breaks down after one step
                tm.lanczos_max_eig(tm.hvp_fn(uvl, pm), jnp.ones(60), 10, key), tm.uv_curvature(pm.reshape(2, 30)))

    Hs, hs, ls, Hu, lu, lm, lam = run(w, p, pm)
    ref = float(np.linalg.eigvalsh(np.asarray(Hs))[-1])
    assert float(hs) == pytest.approx(ref, rel=1e-13)
    assert float(ls) == pytest.approx(ref, rel=1e-10)
    assert np.linalg.eigvalsh(np.asarray(Hs))[0] < 0  # the off-manifold spectrum is indefinite
    assert float(lu) == pytest.approx(float(np.linalg.eigvalsh(np.asarray(Hu))[-1]), rel=1e-10)
    assert float(lm) == pytest.approx(float(lam), rel=1e-12)


# ---------------------------------------------------------------- bad input


def test_bad_inputs():
    with pytest.raises(ValueError, match="eta"):
        tm.scalar_gd_step(-0.1)
    with pytest.raises(ValueError, match="eta"):
        tm.run_scalar_gd(jnp.ones(3), 0.0, 10)
    with pytest.raises(ValueError, match="w0"):
        tm.run_scalar_gd(jnp.array([1.0, jnp.nan]), 0.1, 10)
    with pytest.raises(ValueError, match="w0"):
        tm.run_scalar_gd(jnp.ones((2, 2)), 0.1, 10)
    with pytest.raises(ValueError, match="mask"):
        tm.scalar_net_loss(jnp.ones(3), 1.0, jnp.ones(4, bool))
    with pytest.raises(ValueError, match="depth"):
        tm.depth_mask(7, 5)
    with pytest.raises(ValueError, match="num_iter"):
        tm.lanczos_max_eig(lambda v: v, jnp.ones(4), 5)
    with pytest.raises(ValueError, match="v0"):
        tm.lanczos_max_eig(lambda v: v, jnp.array([1.0, jnp.inf]), 2)
    with pytest.raises(ValueError, match="f0"):
        tm.uv_init(4, 2.0, 10.0, jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="lam0"):
        tm.uv_init(4, -2.0, 0.0, jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="n"):
        tm.uv_init(1, 2.0, 0.0, jax.random.PRNGKey(0))
    with pytest.raises(ValueError, match="params0"):
        tm.run_uv_gd(jnp.ones(5), 0.1, 10)
    with pytest.raises(ValueError, match="eta"):
        tm.run_self_stab(0.5, 0.0, 0.0, 1.0, 2.0, 10)
    with pytest.raises(ValueError, match="w"):
        th.gfs_sharpness(jnp.array([1.0, jnp.nan]))
    with pytest.raises(ValueError, match="eta"):
        th.uv_map_trajectory(1.0, 2.0, -1.0, 10, 5)
    with pytest.raises(ValueError, match="depth"):
        th.min_gfs_sharpness(0)


# ---------------------------------------------------------------- registered experiments (quick mode)

FAST = ["tied_depth4", "divergence_boundary"]  # the headline EoS claims, a few seconds each
SLOW = ["conservation", "gfs", "gfs_monotone", "gfs_monotone_random", "trajectory", "catapult", "self_stabilisation"]


def _validate(name, tmp_path):
    from sims.run import validate_experiment

    checks = validate_experiment(f"edge_of_stability.{name}", quick=True, out=tmp_path)
    failed = [(c.claim, c.theory, c.simulated, c.error, c.tolerance) for c in checks if not c.passed]
    assert checks and not failed, failed


@pytest.mark.parametrize("name", FAST)
def test_experiment_quick_fast(name, tmp_path):
    _validate(name, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW)
def test_experiment_quick(name, tmp_path):
    _validate(name, tmp_path)
