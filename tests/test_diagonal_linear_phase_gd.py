"""GD (gamma, alpha) phase diagram of the diagonal linear network: exact tilted-mirror limit (Even et al. 2023) at
converged points, linear stability gamma lambda_max <= 2 at every limit, the GF-path stability criterion, divergence.

Theory: derivations.diagonal_linear (reduced mirror ODE + block Hessian, dual Newton); simulation: toymodels GD
(lax.scan) with the Hessian by jax.hessian. Reference numbers from the spec (A.3.2, A.3.6) where quoted.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from derivations import diagonal_linear as th
from toymodels import diagonal_linear as dl

TS = np.concatenate([np.linspace(0.0, 100.0, 100, endpoint=False), np.geomspace(100.0, 3e4, 100)])


@pytest.fixture(scope="module")
def data():
    return dl.make_data()  # n=20, d=40, k=3, seed 0 (spec A.1)


def test_block_hessian_matches_autodiff(data):
    """The sympy-checked block formula of the (u, v) Hessian equals jax.hessian at a random point (round-off)."""
    X, y, _ = data
    rng = np.random.default_rng(1)
    u, v = rng.standard_normal(40), rng.standard_normal(40)
    Hb = th.uv_hessian_blocks(X, y, u, v)
    Ha = np.asarray(dl.uv_hessian(jnp.asarray(u), jnp.asarray(v), jnp.asarray(X), jnp.asarray(y)))
    assert np.max(np.abs(Hb - Ha)) < 1e-12 * np.max(np.abs(Ha))


def test_gf_path_sharpness_endpoints(data):
    """lambda_max along the GF path: at t = 0 it is the init sharpness (spec A.3.6: ~||X^T y/n||_inf = 1.3569 for
    small alpha), at the end the sharpness of the GF limit; the maximum is (up to 1e-6) the end point."""
    X, y, _ = data
    s = th.gf_path_sharpness(X, y, 0.03, TS)
    u0, v0 = dl.init_uv(0.03, 40)
    assert s[0] == pytest.approx(float(dl.sharpness(u0, v0, jnp.asarray(X), jnp.asarray(y))), rel=1e-12)
    assert s[0] == pytest.approx(1.3569, abs=2e-3)  # + O(alpha^2) correction from the 2 alpha^2 H block
    s_inf = th.sharpness_at_interpolator(X, th.mirror_limit(X, y, 0.03, parametrisation="P"), 0.03)
    assert s[-1] == pytest.approx(s_inf, rel=1e-6)  # reduced ODE at t = 3e4 vs the exact limit (Radau rtol 1e-12)
    assert s.max() <= s[-1] * (1 + 1e-6)


def test_gd_phase_points(data):
    """Four (alpha, gamma) points of the GD phase diagram, one jit: below the GF-path criterion (converges to the
    tilted limit), above it with a catapult (converges to a flatter, different interpolator, still the exact tilted
    limit), diverged, and bounded but not converging (max|gamma g| > 1)."""
    X, y, _ = data
    alphas = np.array([0.3, 1.0, 1.0, 0.1])
    gammas = np.array([0.4, 0.2, 0.4, 1.2])
    K = 20_000

    def run(a, g):
        res = dl.run_gd(X, y, a, g, K)
        f = res.final
        return f, res.observables[-1], res.diverged, dl.sharpness(f["u"], f["v"], jnp.asarray(X), jnp.asarray(y))

    f, loss, div, S = jax.device_get(jax.jit(jax.vmap(run))(jnp.asarray(alphas), jnp.asarray(gammas)))
    crit = {a: 2.0 / th.gf_path_sharpness(X, y, a, TS).max() for a in (0.3, 1.0)}
    # theory classification: gamma below / above 2/max_t S_GF(t)
    assert gammas[0] < crit[0.3] and gammas[1] > crit[1.0] and gammas[2] > crit[1.0]
    for i in (0, 1):  # converged points: exact tilted mirror limit and linear stability
        assert not div[i] and loss[i] < 1e-25 and f["max_gg"][i] < 1
        a_inf = np.asarray(th.alpha_inf_from_log_products(alphas[i], f["sum_log1m"][i]))
        phi = np.asarray(th.phi_inf_from_sums(f["sum_atanh"][i]))
        beta = f["u"][i] * f["v"][i]
        # residual ||X b - y|| ~ 1e-12 at loss < 1e-25: the remaining motion of the iterates is ~ 1e-12 x cond
        assert np.linalg.norm(beta - th.mirror_limit(X, y, a_inf, phi=phi, parametrisation="P")) < 1e-10
        assert gammas[i] * S[i] <= 2.0 * (1 + 1e-9)
    # the catapult point ends far from the GF limit and flatter than it (2/gamma = 10 < S_GF = 12.58)
    bgf = th.mirror_limit(X, y, 1.0, parametrisation="P")
    assert np.linalg.norm(f["u"][1] * f["v"][1] - bgf) > 0.1
    assert S[1] < th.sharpness_at_interpolator(X, bgf, 1.0)
    assert div[2]
    assert not div[3] and loss[3] > 1e-6 and f["max_gg"][3] > 1  # bounded, not converged


@pytest.mark.parametrize("call, match", [
    (lambda X, y: th.uv_hessian_blocks(X, y, np.ones(3), np.ones(40)), "u"),
    (lambda X, y: th.uv_hessian_blocks(X[:, :, None], y, np.ones(40), np.ones(40)), "X"),
    (lambda X, y: th.gf_path_sharpness(X, y, 0.0, [0.0, 1.0]), "alpha"),
    (lambda X, y: th.gf_path_sharpness(X, y, 0.1, [-1.0, 1.0]), "ts"),
])
def test_bad_input(data, call, match):
    X, y, _ = data
    with pytest.raises((ValueError, TypeError), match=match):
        call(X, y)
