"""Diagonal linear networks: sympy identities, exact solvers vs spec reference numbers, theory vs simulation, bad input.

Reference numbers quoted from the spec (shared/spec/diagonal_linear_and_scalar_eos.md, A.3.2-A.3.6), which were
computed there independently of this code.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from derivations import diagonal_linear as th
from derivations.codegen import check_identities
from toymodels import diagonal_linear as dl


@pytest.fixture(scope="module")
def data():
    return dl.make_data()  # n=20, d=40, k=3, seed 0 (spec A.1)


def test_identities_pass():
    results = check_identities(th.IDENTITIES, "diagonal_linear")
    failed = [(r.name, r.residual) for r in results if not r.passed]
    assert not failed, failed
    assert len(results) >= 12


def test_spec_data_and_interpolators(data):
    X, y, bstar = data
    # spec A.3.2: ||X^T y/n||_inf = 1.3569, ||b_l2||_1 = 8.6936, ||b_l1||_1 = 4.7201, b_l1 = b* exactly
    assert abs(np.max(np.abs(X.T @ y)) / 20 - 1.3569) < 1e-4
    assert abs(np.abs(th.min_l2_interpolator(X, y)).sum() - 8.6936) < 1e-4
    b1 = th.min_l1_interpolator(X, y)
    assert abs(np.abs(b1).sum() - 4.7201) < 1e-4
    assert np.linalg.norm(b1 - bstar) < 1e-8  # LP feasibility tolerance 1e-10


@pytest.mark.parametrize("alpha, d_l2, d_l1, l1", [(10, 1.0e-6, 2.17, 8.6936), (0.1, 1.35, 0.848, 5.9729),
                                                   (0.01, 2.08, 0.0999, 4.8498), (1e-3, 2.16, 1.07e-2, 4.7332),
                                                   (1e-4, 2.17, 1.16e-3, 4.7215)])
def test_mirror_limit_matches_spec_table(data, alpha, d_l2, d_l1, l1):
    X, y, _ = data
    b = th.mirror_limit(X, y, alpha)
    assert np.linalg.norm(X @ b - y) < 1e-11
    # KKT: arcsinh(b/(2 alpha^2)) in range(X^T)
    z = np.arcsinh(b / (2 * alpha**2))
    proj = X.T @ np.linalg.lstsq(X.T, z, rcond=None)[0]
    assert np.linalg.norm(z - proj) < 1e-8 * max(1.0, np.linalg.norm(z))
    b1, b2 = th.min_l1_interpolator(X, y), th.min_l2_interpolator(X, y)
    # spec quotes 2-3 significant digits
    assert np.linalg.norm(b - b2) == pytest.approx(d_l2, rel=0.02)
    assert np.linalg.norm(b - b1) == pytest.approx(d_l1, rel=0.02)
    assert np.abs(b).sum() == pytest.approx(l1, abs=1e-4)


def test_l1_gap_bound(data):
    """0 <= ||b_alpha||_1 - ||b_l1||_1 <= l1_gap_bound, and the bound -> 0 like 1/ln(1/alpha^2)."""
    X, y, _ = data
    b1 = th.min_l1_interpolator(X, y)
    bounds = []
    for a in (0.1, 0.01, 1e-3, 1e-4):
        b = th.mirror_limit(X, y, a)
        gap = np.abs(b).sum() - np.abs(b1).sum()
        bounds.append(th.l1_gap_bound(b, b1, a))
        assert -1e-9 <= gap <= bounds[-1]
    assert bounds[-1] < 2e-3 and np.all(np.diff(bounds) < 0)


def test_jax_and_numpy_solvers_agree(data):
    """Two independent dual solvers (autodiff Newton in JAX, hand-derived Newton in numpy) give the same minimiser."""
    X, y, _ = data
    alphas = jnp.array([3.0, 0.3, 0.03, 3e-3])
    bj = np.asarray(jax.jit(jax.vmap(lambda a: dl.implicit_bias_solution(X, y, a)))(alphas))
    for a, b in zip(np.asarray(alphas), bj):
        assert np.linalg.norm(b - th.mirror_limit(X, y, float(a))) < 1e-10


@pytest.mark.parametrize("alpha, d_l1", [(1.0, 2.15), (0.3, 0.73), (0.1, 4.9e-2), (0.03, 1.6e-3)])
def test_depth3_limit_matches_spec(data, alpha, d_l1):
    X, y, _ = data
    b = th.depth_limit(X, y, alpha, 3)
    assert np.linalg.norm(X @ b - y) < 1e-11
    assert np.linalg.norm(b - th.min_l1_interpolator(X, y)) == pytest.approx(d_l1, rel=0.05)


def test_psi_potential_relation():
    beta = jnp.linspace(-3, 3, 11)
    for a in (0.05, 0.7, 2.0):
        assert float(th.psi(beta, a)) == pytest.approx(0.5 * float(th.potential(beta, a / np.sqrt(2))), rel=1e-12)


def test_mirror_flow_trajectory(data):
    """Full 2d-parameter GF (Tsit5) vs the reduced n-dim ODE (scipy Radau) along the trajectory, alpha = 0.1."""
    X, y, _ = data
    ts = np.array([0.0, 0.5, 2.0, 5.0])
    sim, res = dl.gradient_flow_trajectory(X, y, 0.1, ts, rtol=1e-10, atol=1e-12)
    assert not bool(res.failed)
    theory = th.reduced_flow(X, y, 0.1, ts, parametrisation="P")
    # tol: 1e3 x rtol x ||beta|| (global error growth of two rtol-controlled integrators over t <= 5)
    assert np.max(np.linalg.norm(np.asarray(sim) - theory, axis=1)) < 1e3 * 1e-10 * 3


def test_mirror_flow_W_matches_P(data):
    """(W) at scale alpha equals (P) at scale sqrt(2) alpha with time doubled (spec A.1 conversions)."""
    X, y, _ = data
    bW = th.reduced_flow(X, y, 0.1, np.array([0.5, 1.0]), parametrisation="W")
    bP = th.reduced_flow(X, y, 0.1 * np.sqrt(2), np.array([1.0, 2.0]), parametrisation="P")
    assert np.max(np.abs(bW - bP)) < 1e-9


def test_gf_limit_simulation(data):
    """Simulated GF (log coordinates, Kvaerno5) at alpha = 0.1 equals argmin Q_alpha (spec: 5.6e-15)."""
    X, y, _ = data
    beta = dl.gradient_flow_limit(X, y, 0.1, t_max=2e3, rtol=1e-8, atol=1e-10)
    assert float(dl.loss(beta, X, y)) < 1e-20
    assert np.linalg.norm(np.asarray(beta) - th.mirror_limit(X, y, 0.1)) < 1e-7  # 10 x rtol x ||beta||


def test_gd_exact_implicit_bias(data):
    """GD gamma = 0.4: product formula for alpha_inf and the tilted mirror limit (spec table A.3.4: 3.6e-13)."""
    X, y, _ = data
    res = dl.run_gd(X, y, 0.1, 0.4, 20_000)
    f = jax.device_get(res.final)
    assert not bool(res.diverged) and f["max_gg"] < 1
    assert f["max_gg"] == pytest.approx(0.543, abs=1e-3)  # spec: gamma ||grad L(0)||_inf
    a_inf = np.asarray(th.alpha_inf_from_log_products(0.1, f["sum_log1m"]))
    u, v = f["u"], f["v"]
    assert np.max(np.abs(a_inf**2 - (u**2 - v**2) / 2) / a_inf**2) < 100 * 20_000 * 2.2e-16 / (1 - 0.543**2)
    phi = np.asarray(th.phi_inf_from_sums(f["sum_atanh"]))
    beta = u * v
    assert np.linalg.norm(X @ beta - y) < 1e-12
    assert np.linalg.norm(beta - th.mirror_limit(X, y, a_inf, phi=phi, parametrisation="P")) < 1e-10
    # without the tilt the prediction is off by O(1e-2) (spec 6.9e-2): the tilt is not negligible
    assert np.linalg.norm(beta - th.mirror_limit(X, y, a_inf, parametrisation="P")) > 1e-2
    assert np.median(a_inf / 0.1) == pytest.approx(0.926, abs=2e-3)


def test_sgd_exact_implicit_bias_and_sparsity(data):
    """SGD (batch 1): the exact identities hold per seed; larger steps give smaller alpha_inf and lower risk."""
    X, y, bstar = data
    run = jax.jit(jax.vmap(lambda g, s: dl.run_gd(X, y, 0.1, g, 100_000, key=jax.random.PRNGKey(s)).final))
    gammas = jnp.array([0.04, 0.08])
    f = jax.device_get(run(gammas, jnp.array([1, 1])))
    risks, ratios = [], []
    for i in range(2):
        assert f["max_gg"][i] < 1
        a_inf = np.asarray(th.alpha_inf_from_log_products(0.1, f["sum_log1m"][i]))
        phi = np.asarray(th.phi_inf_from_sums(f["sum_atanh"][i]))
        beta = f["u"][i] * f["v"][i]
        assert np.linalg.norm(X @ beta - y) < 1e-10
        assert np.linalg.norm(beta - th.mirror_limit(X, y, a_inf, phi=phi, parametrisation="P")) < 1e-9
        risks.append(0.5 * np.sum((beta - bstar) ** 2))
        ratios.append(np.mean(np.log(a_inf / 0.1)))
    # spec A.3.4 (seed-dependent, 2-digit): mean ln(alpha_inf/alpha) -0.267 (0.04), -0.698 (0.08); risk .124, .064
    assert ratios[1] < ratios[0] < 0
    assert risks[1] < risks[0]
    assert ratios[0] == pytest.approx(-0.267, rel=0.15) and ratios[1] == pytest.approx(-0.698, rel=0.15)


def test_stability_bias_sharpness():
    """Non-centred data (mu = 1), alpha = 1: GD gamma = 0.03 converges to a flatter interpolator, sharpness
    <= 2/gamma (spec A.3.6: 50.00; GF limit 83.4)."""
    X, y, _ = dl.make_data(mu=1.0)
    res = dl.run_gd(X, y, 1.0, 0.03, 50_000)
    f = res.final
    assert float(dl.loss(f["u"] * f["v"], X, y)) < 1e-20
    S = float(dl.sharpness(f["u"], f["v"], X, y))
    assert S <= 2 / 0.03
    assert S == pytest.approx(50.00, abs=0.01)
    s_gf = th.sharpness_at_interpolator(X, th.mirror_limit(X, y, 1.0, parametrisation="P"), 1.0)
    assert s_gf == pytest.approx(83.4, abs=0.05)
    assert th.stability_weighted_l1(X, np.asarray(f["u"] * f["v"])) <= 1 / 0.03


def test_hessian_small_init_spectrum(data):
    """Spec A.3.6: at u = sqrt2 alpha, v = 0 the Hessian spectrum is ~ +-|g_i|, lambda_max ~ ||X^T y/n||_inf."""
    X, y, _ = data
    u, v = dl.init_uv(0.01, 40)
    ev = np.linalg.eigvalsh(np.asarray(dl.uv_hessian(u, v, X, jnp.asarray(y))))
    assert ev[-1] == pytest.approx(1.3569, abs=2e-4) and ev[0] == pytest.approx(-1.3568, abs=2e-4)


def test_saddle_to_saddle_reference():
    """Pesme & Flammarion 2023 jump algorithm on the spec A.3.7 instance: jump times, supports, plateau losses."""
    rng = np.random.default_rng(3)
    X = rng.standard_normal((10, 20))
    bstar = np.zeros(20)
    bstar[:4] = [3, -2, 1.5, 1]
    taus, betas, losses = th.saddle_to_saddle(X, X @ bstar)
    ref_t = [0.21173, 0.23776, 0.32831, 1.20487, 1.56473, 2.92182, 3.79]
    assert np.allclose(taus[1:], ref_t, atol=1e-2)
    ref_L = [5.170, 2.418, 0.695, 0.211, 0.173, 0.0843, 0]
    assert np.allclose(losses[1:], ref_L, atol=2e-3)  # plateau after each jump
    supports = [set(np.flatnonzero(np.abs(b) > 1e-9)) for b in betas[1:]]
    assert supports[:6] == [{6}, {0, 6}, {0, 1, 6}, {0, 1, 2, 6}, {0, 1, 2, 6, 8}, {0, 1, 2, 6, 8, 17}]
    assert np.linalg.norm(betas[-1] - bstar) < 1e-8


def test_saddle_to_saddle_gradient_flow():
    """GF of u*v in accelerated time from alpha = 1e-24 sits on the jump algorithm's saddles at plateau midpoints
    (spec A.3.7: errors <= 0.045); tolerance max||beta_k|| / ln(1/alpha), the O(1/ln(1/alpha)) rate."""
    X, y, _ = dl.make_saddle_data()
    taus_k, betas, _ = th.saddle_to_saddle(X, y)
    mids = 0.5 * (taus_k[:-1] + taus_k[1:])
    sim, res = dl.gradient_flow_accelerated(X, y, 1e-24, np.concatenate([[0.0], mids]))
    assert not bool(res.failed)
    errs = np.linalg.norm(np.asarray(sim)[1:] - betas[:-1], axis=1)
    assert errs.max() <= np.linalg.norm(betas, axis=1).max() / np.log(1e24)
    assert errs.max() == pytest.approx(0.045, abs=0.01)


def test_depth3_gf_limit_simulation(data):
    """Depth-3 GF from w+- = alpha = 1 converges to the depth-3 potential minimiser (spec A.3.3: 5.7e-11)."""
    X, y, _ = data
    beta = dl.gradient_flow_limit(X, y, 1.0, t_max=2e3, depth=3, rtol=1e-8, atol=1e-10)
    assert float(dl.loss(beta, X, y)) < 1e-20
    assert np.linalg.norm(np.asarray(beta) - th.depth_limit(X, y, 1.0, 3)) < 1e-6  # 100 x rtol x ||beta||


@pytest.mark.parametrize("call, match", [
    (lambda X, y: dl.make_saddle_data(d=2), "d"),
    (lambda X, y: dl.run_gd(X, y, 0.1, 0.1, 10, schedule=2.0), "schedule"),
    (lambda X, y: dl.gradient_flow_accelerated(X, y, 0.0, [0.0, 1.0]), "alpha"),
    (lambda X, y: dl.make_data(n=0), "n"),
    (lambda X, y: dl.make_data(k=50), "k"),
    (lambda X, y: dl.run_gd(X, y, 0.1, -0.1, 10), "gamma"),
    (lambda X, y: dl.run_gd(X, y, 0.1, 0.0, 10), "gamma"),
    (lambda X, y: dl.run_gd(X, y, -0.1, 0.1, 10), "alpha"),
    (lambda X, y: dl.run_gd(X, y, 0.1, 0.1, 0), "num_steps"),
    (lambda X, y: dl.run_gd(X, y, 0.1, 0.1, 10, key=jax.random.PRNGKey(0), batch_size=0), "batch_size"),
    (lambda X, y: dl.run_gd(X[:, :, None], y, 0.1, 0.1, 10), "X"),
    (lambda X, y: dl.run_gd(X, y[:-1], 0.1, 0.1, 10), "y"),
    (lambda X, y: dl.run_gd(X * np.nan, y, 0.1, 0.1, 10), "X"),
    (lambda X, y: dl.gradient_flow_limit(X, y, 0.0), "alpha"),
    (lambda X, y: dl.gradient_flow_limit(X, y, 0.1, depth=1), "depth"),
    (lambda X, y: dl.gradient_flow_trajectory(X, y, float("nan"), [0.0, 1.0]), "alpha"),
    (lambda X, y: dl.implicit_bias_solution(X, y, -1.0), "alpha"),
    (lambda X, y: th.mirror_limit(X, y, 0.0), "alpha"),
    (lambda X, y: th.mirror_limit(X, y, 0.1, parametrisation="Q"), "parametrisation"),
    (lambda X, y: th.depth_limit(X, y, 0.1, 2), "D"),
    (lambda X, y: th.min_l1_interpolator(X, y[:3]), "y"),
])
def test_bad_input(data, call, match):
    X, y, _ = data
    with pytest.raises((ValueError, TypeError), match=match):
        call(X, y)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mirror_flow", "gf_limit", "gf_limit_depth3", "gd_implicit_bias",
                                  "sgd_implicit_bias", "stability_bias", "saddle_to_saddle",
                                  "large_step_sgd", "phase_diagram", "phase_diagram_gd"])
def test_quick_validation(name, tmp_path):
    from sims.run import validate_experiment

    checks = validate_experiment(f"diagonal_linear.{name}", quick=True, out=tmp_path)
    failed = [(c.claim, c.error, c.tolerance) for c in checks if not c.passed]
    assert checks and not failed, failed
