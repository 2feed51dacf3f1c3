"""Neural collapse (UFM): sympy identities, closed forms vs independent numerics, GD vs closed forms, NC metrics,
strict saddles, bad input. Tolerances: GD fixed points are exact critical points, so the distance to the minimiser
manifold is <= ||grad L||/mu (mu = smallest non-zero Hessian eigenvalue, measured); optimiser tolerances for scipy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import minimize, minimize_scalar

import derivations.neural_collapse as th
import toymodels.neural_collapse as tm
from derivations.codegen import check_identities


def test_identities_all_pass():
    res = check_identities(th.IDENTITIES, "neural_collapse")
    bad = [(r.name, r.residual) for r in res if not r.passed]
    assert not bad, bad
    assert len(res) >= 10


# ---------------------------------------------------------------------------------------------------------------
# closed forms vs independent numerical minimisation of the reduced objective (scipy, not the closed form)
@pytest.mark.parametrize("lam_b", [None, 0.0, 0.5, 3.0])
@pytest.mark.parametrize("g", [0.02, 0.06, 0.12, 0.2, 0.3])
def test_mse_reduced_minimiser_vs_scipy(lam_b, g):
    K, N = 4, 5
    lam = g / np.sqrt(N)  # lam_W = lam_H = lam gives g = sqrt(N) lam

    def F(x):
        a, c, beta = x
        if lam_b is None:
            c, beta = a, 0.0
        lb = 0.0 if lam_b is None else lam_b
        return (((K - 1) * (a - 1) ** 2 + (c + K * beta - 1) ** 2) / (2 * K) + g * ((K - 1) * a + c)
                + lb * K * beta ** 2 / 2)

    bounds = [(0, 2), (0, 2), (-2, 2)]
    best = min((minimize(F, x0, bounds=bounds, method="L-BFGS-B", options={"ftol": 1e-15, "gtol": 1e-12})
                for x0 in ([0.5, 0.5, 0.1], [0.01, 0.9, 0.0], [1.0, 0.0, 0.3])), key=lambda r: r.fun)
    m = th.mse_minimizer(K, N, lam, lam, lam_b)
    assert abs(float(m["loss"]) - best.fun) < 1e-10  # L-BFGS-B ftol 1e-15 on an O(1) objective
    assert abs(float(m["a"]) - best.x[0]) < 1e-5  # strongly convex in a: error ~ sqrt(ftol)
    if lam_b is not None:
        assert abs(float(m["beta"]) - best.x[2]) < 1e-5


@pytest.mark.parametrize("g", [0.01, 0.05, 0.1, 0.2])
def test_ce_scale_vs_scalar_minimisation(g):
    K, N = 5, 3
    lam = g / np.sqrt(N)
    f = lambda A: np.log1p((K - 1) * np.exp(-K * A / (K - 1))) + K * g * A
    r = minimize_scalar(f, bounds=(0, 50), method="bounded", options={"xatol": 1e-12})
    m = th.ce_minimizer(K, N, lam, lam)
    assert abs(float(m["A"]) - r.x) < 1e-6
    assert abs(float(m["loss"]) - r.fun) < 1e-12


def test_ce_scale_zero_past_threshold():
    K, N = 4, 2
    lam = 1.2 / (K * np.sqrt(N))
    m = th.ce_minimizer(K, N, lam, lam)
    assert float(m["A"]) == 0.0 and float(m["norm_W"]) == 0.0


def test_mse_norms_zero_past_threshold_and_positive_below():
    K, N, d = 3, 4, 3
    lam_star = th.mse_threshold_lambda(K, N)
    for lb in (None, 0.0, 1.0):
        nW, nH, _ = th.mse_minimizer_norms(K, N, d, 1.01 * lam_star, 1.01 * lam_star, lb)
        assert float(nW) == 0.0 and float(nH) == 0.0
        nW, nH, _ = th.mse_minimizer_norms(K, N, d, 0.99 * lam_star, 0.99 * lam_star, lb)
        assert float(nW) > 0 and float(nH) > 0


@pytest.mark.parametrize("ratio", [0.1, 0.5, 0.9, 0.99, 1.01, 1.5])
def test_extended_minimiser_vs_scalar_minimisation(ratio):
    """Three-factor mode objective f(s) = (s-1)^2/(2K) + (3/2)(q/K) s^(2/3), minimised by brute force + polish."""
    K, N = 4, 3
    lam = ratio * th.EXT_Q_CRIT / (K * N ** (1 / 3))
    q = K * (N * lam ** 3) ** (1 / 3)
    f = lambda s: (s - 1) ** 2 / (2 * K) + 1.5 * (q / K) * np.abs(s) ** (2 / 3)
    grid = np.linspace(0, 1.2, 120001)
    s0 = grid[np.argmin(f(grid))]
    if s0 > 0:
        s0 = minimize_scalar(f, bounds=(max(s0 - 1e-4, 1e-9), s0 + 1e-4), method="bounded",
                             options={"xatol": 1e-13}).x
    m = th.extended_ufm_minimizer(K, N, lam, lam, lam)
    assert abs(float(m["s"]) - s0) < 1e-6  # bounded Brent, xatol 1e-13 (strongly convex near s* > 0)
    assert abs(float(m["loss"]) - K * f(s0)) < 1e-12
    assert (float(m["s"]) > 0) == (ratio < 1)


# ---------------------------------------------------------------------------------------------------------------
# NC metrics against an independent numpy implementation
def _numpy_nc1(H, labels, K):
    mus = np.stack([H[:, labels == k].mean(axis=1) for k in range(K)], axis=1)
    muG = H.mean(axis=1)
    SW = sum(np.outer(h - mus[:, y], h - mus[:, y]) for h, y in zip(H.T, labels)) / H.shape[1]
    SB = sum(np.outer(mus[:, k] - muG, mus[:, k] - muG) for k in range(K)) / K
    return np.trace(SW @ np.linalg.pinv(SB)) / K


def test_nc_metrics_exact_etf_and_noisy():
    K, N, d = 4, 3, 5
    rng = np.random.default_rng(0)
    # simplex ETF in R^d: centred one-hot vectors rotated by a random orthogonal map
    Q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    M = 2.0 * Q[:, :K] @ (np.eye(K) - np.ones((K, K)) / K)
    labels = tm.class_labels([N] * K)
    H = np.repeat(M, N, axis=1)
    W = 0.7 * M.T
    m = tm.nc_metrics(jnp.asarray(H), jnp.asarray(W), labels)
    for k in ("nc1", "equinorm_H", "equinorm_W", "equiangle_H", "equiangle_W", "nc3", "nc4"):
        assert abs(float(m[k])) < 1e-12, (k, float(m[k]))
    Hn = H + 0.1 * rng.normal(size=H.shape)
    m = tm.nc_metrics(jnp.asarray(Hn), jnp.asarray(W), labels)
    assert abs(float(m["nc1"]) - _numpy_nc1(Hn, labels, K)) < 1e-12
    # orthogonal-frame classifier (no-bias minimiser) is not an ETF: cos = 0, deviation 1/(K-1)
    m = tm.nc_metrics(jnp.asarray(H), jnp.asarray(Q[:, :K].T), labels)
    assert abs(float(m["equiangle_W"]) - 1 / (K - 1)) < 1e-12


# ---------------------------------------------------------------------------------------------------------------
# GD on the UFM vs the closed forms (one vmapped compilation)
def _mse_gd_batch(K, N, d, lams, modes, lam_b_pos, lr, steps, seed=0):
    labels = tm.class_labels([N] * K)
    Y = tm.one_hot_targets(labels, K)

    def run(key, lam, mode):
        use_b = jnp.where(mode == 0, 0.0, 1.0)
        lam_b = jnp.where(mode == 2, lam_b_pos, 0.0)
        loss = lambda p: tm.mse_loss({"W": p["W"], "H": p["H"], "b": use_b * p["b"]}, Y, lam, lam, lam_b)
        res = tm.train_gd(loss, tm.init_params(key, K, d, K * N), lr, steps, save_every=steps, observables=loss)
        p = res.final
        eig = tm.hessian_eigvals(loss, p)
        mu = jnp.min(jnp.where(eig > 1e-8, eig, jnp.inf))
        return (jnp.linalg.norm(p["W"]), jnp.linalg.norm(p["H"]), jnp.linalg.norm(use_b * p["b"]), loss(p),
                tm.grad_norm(loss, p) / mu, eig[0])

    keys = jax.random.split(jax.random.PRNGKey(seed), len(lams))
    return [np.asarray(x) for x in jax.jit(jax.vmap(run))(keys, jnp.asarray(lams), jnp.asarray(modes))]


def test_mse_gd_reaches_closed_form_minimiser():
    K, N, d, lb = 3, 2, 3, 0.5
    lam_star = th.mse_threshold_lambda(K, N)
    ratios = np.array([0.1, 0.5, 0.8, 1.3])
    lams = np.repeat(ratios * lam_star, 3)
    modes = np.tile([0, 1, 2], ratios.size)
    nW, nH, nb, L, dist, emin = _mse_gd_batch(K, N, d, lams, modes, lb, lr=0.8, steps=4000)
    assert dist.max() < 1e-6  # converged
    assert emin.min() > -1e-8  # no run ends at a saddle
    for i, (lam, mode) in enumerate(zip(lams, modes)):
        lam_b = None if mode == 0 else (0.0 if mode == 1 else lb)
        tW, tH, tb = (float(x) for x in th.mse_minimizer_norms(K, N, d, lam, lam, lam_b))
        tol = 10 * dist[i] + 1e-9
        assert abs(nW[i] - tW) < tol and abs(nH[i] - tH) < tol and abs(nb[i] - tb) < tol, (lam, mode)
        assert abs(L[i] - float(th.mse_min_loss(K, N, lam, lam, lam_b))) < 10 * dist[i] ** 2 + 1e-12


def test_ce_gd_reaches_etf_scale():
    K, N, d = 3, 2, 2
    lams = np.array([0.1, 0.5]) / (K * np.sqrt(N))
    labels = tm.class_labels([N] * K)

    def run(key, lam):
        loss = lambda p: tm.ce_loss(p, labels, lam, lam, 0.01)
        res = tm.train_gd(loss, tm.init_params(key, K, d, K * N), 1.0, 3000, save_every=3000, observables=loss)
        p = res.final
        eig = tm.hessian_eigvals(loss, p)
        mu = jnp.min(jnp.where(eig > 1e-8, eig, jnp.inf))
        return jnp.linalg.norm(p["W"]), jnp.linalg.norm(p["H"]), tm.grad_norm(loss, p) / mu

    keys = jax.random.split(jax.random.PRNGKey(1), lams.size)
    nW, nH, dist = (np.asarray(x) for x in jax.jit(jax.vmap(run))(keys, jnp.asarray(lams)))
    assert dist.max() < 1e-6
    for i, lam in enumerate(lams):
        m = th.ce_minimizer(K, N, lam, lam)
        assert abs(nW[i] - float(m["norm_W"])) < 10 * dist[i] + 1e-9
        assert abs(nH[i] - float(m["norm_H"])) < 10 * dist[i] + 1e-9


def test_nc1_decays_at_predicted_rate():
    """Free bias, d = K-1 (rank W* = d): NC1_t ~ rho^(2t), rho = 1 - lr (lam + kappa a/(KN)); NC2-NC4 -> 0."""
    from sims.experiments.neural_collapse import nc1_tail_slopes

    K, N, d, lr, steps = 3, 2, 2, 0.4, 2000
    lam = 0.3 * th.mse_threshold_lambda(K, N)
    labels = tm.class_labels([N] * K)
    Y = tm.one_hot_targets(labels, K)
    loss = lambda p: tm.mse_loss(p, Y, lam, lam, 0.0)
    obs = lambda p: tm.nc_metrics(p["H"], p["W"], labels, p["b"])
    res = jax.jit(lambda k: tm.train_gd(loss, tm.init_params(k, K, d, K * N), lr, steps, save_every=10,
                                        observables=obs))(jax.random.PRNGKey(2))
    nc1 = np.asarray(res.observables["nc1"])
    s1, s2 = nc1_tail_slopes(np.asarray(res.steps), nc1)
    pred = 2 * np.log(float(th.nc1_contraction(K, N, lam, lam, lr, 0.0)))
    assert abs(s2 - pred) < 3 * abs(s2 - s1) + 1e-3 * abs(pred)  # remaining transient + 0.1 %
    final = {k: float(v[-1]) for k, v in res.observables.items()}
    assert final["nc1"] < 1e-20 and final["nc4"] == 0.0
    for k in ("equinorm_H", "equinorm_W", "equiangle_H", "equiangle_W", "nc3"):
        assert final[k] < 1e-8, (k, final[k])  # geometric decay, rate >= lr * lam per step over 2000 steps


# ---------------------------------------------------------------------------------------------------------------
# strict saddles
@pytest.mark.parametrize("bias", [False, True])
def test_partial_critical_points_are_strict_saddles(bias):
    K, N, d = 3, 2, 4
    lam_W, lam_H = 0.05, 0.12
    labels = tm.class_labels([N] * K)
    Y = tm.one_hot_targets(labels, K)
    nmodes = K - 1 if bias else K
    Q, _ = np.linalg.qr(np.random.default_rng(3).normal(size=(d, d)))
    mu_minus = float(th.zero_point_hessian_min_eig(K, N, lam_W, lam_H))
    assert mu_minus < 0  # below threshold
    loss = lambda q: tm.mse_loss(q, Y, lam_W, lam_H, 0.0)

    def at(active):
        W, H, b = th.partial_critical_point(K, N, d, lam_W, lam_H, active, bias, jnp.asarray(Q))
        p = {"W": W, "H": H, "b": b} if bias else {"W": W, "H": H}
        return tm.grad_norm(loss, p), tm.hessian_eigvals(loss, p)[0]

    actives = (np.arange(nmodes)[None, :] < np.arange(nmodes + 1)[:, None]).astype(float)  # rank r = row index
    gn, emin = (np.asarray(x) for x in jax.jit(jax.vmap(at))(jnp.asarray(actives)))
    assert gn.max() < 1e-13
    np.testing.assert_allclose(emin[:-1], mu_minus, rtol=0, atol=1e-12)  # non-collapsed: strict saddles
    assert emin[-1] > -1e-12  # full rank = collapsed minimiser: PSD


# ---------------------------------------------------------------------------------------------------------------
# bad input
def test_bad_input():
    with pytest.raises(ValueError, match="K"):
        th.mse_minimizer_norms(1, 3, 3, 0.1, 0.1)
    with pytest.raises(ValueError, match="lam_W"):
        th.mse_minimizer_norms(3, 3, 3, -0.1, 0.1)
    with pytest.raises(ValueError, match="lam_b"):
        th.mse_minimizer_norms(3, 3, 3, 0.1, 0.1, -1.0)
    with pytest.raises(ValueError, match="d must be"):
        th.mse_minimizer_norms(4, 3, 3, 0.1, 0.1, None)
    th.mse_minimizer_norms(4, 3, 3, 0.1, 0.1, 0.0)  # d = K-1 is enough with a free bias
    with pytest.raises(ValueError, match="lam_H"):
        th.ce_minimizer(3, 2, 0.1, float("nan"))
    with pytest.raises(ValueError, match="active"):
        th.partial_critical_point(3, 2, 3, 0.1, 0.1, [1.0, 0.0], False)
    with pytest.raises(ValueError, match="class_sizes"):
        tm.class_labels([3])
    with pytest.raises(ValueError, match="scale"):
        tm.init_params(jax.random.PRNGKey(0), 3, 2, 6, scale=0.0)
    p = tm.init_params(jax.random.PRNGKey(0), 3, 2, 6)
    Y = tm.one_hot_targets(tm.class_labels([2, 2, 2]), 3)
    with pytest.raises(ValueError, match="lam_H"):
        tm.mse_loss(p, Y, 0.1, -0.1)
    with pytest.raises(ValueError, match="Y must be"):
        tm.mse_loss(p, Y[:2], 0.1, 0.1)
    with pytest.raises(ValueError, match="lr"):
        tm.train_gd(lambda q: tm.mse_loss(q, Y, 0.1, 0.1), p, 0.0, 10)
    with pytest.raises(ValueError, match="labels"):
        tm.nc_metrics(p["H"], p["W"], np.zeros(5, int))
    with pytest.raises(ValueError, match="W must be"):
        tm.nc_metrics(p["H"], p["W"].T, np.zeros(6, int))
    with pytest.raises(ValueError, match="weights"):
        tm.mse_loss(p, Y, 0.1, 0.1, weights=jnp.ones(4))
    pe = tm.init_extended_params(jax.random.PRNGKey(0), 3, 2, 6)
    with pytest.raises(ValueError, match="W1"):
        tm.extended_mse_loss({**pe, "W1": jnp.ones((3, 2))}, Y, 0.1, 0.1, 0.1)
    with pytest.raises(ValueError, match="lam_W1"):
        tm.extended_mse_loss(pe, Y, 0.1, -1.0, 0.1)
    with pytest.raises(ValueError, match="lam_W2"):
        th.extended_ufm_minimizer(3, 2, 0.0, 0.1, 0.1)


# ---------------------------------------------------------------------------------------------------------------
# every registered experiment passes in quick mode (slow: compiles each experiment once)
@pytest.mark.slow
@pytest.mark.parametrize("name", ["mse_global", "nc_dynamics", "strict_saddle", "ce_global", "minority_collapse",
                                  "minority_collapse_ce", "extended_relu"])
def test_experiment_quick_passes(name, results_dir):
    from sims.run import validate_experiment

    checks = validate_experiment(f"neural_collapse.{name}", quick=True, out=results_dir)
    failed = [(c.claim, c.error, c.tolerance) for c in checks if not c.passed]
    assert not failed, failed
