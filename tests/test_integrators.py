"""Shared integrators against exact solutions of linear problems (independent: scipy's expm, powers, Lyapunov sums)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import scipy.linalg as sla

from toymodels.flow import gradient_flow, negative_gradient
from toymodels.iterate import gd_step, iterate, optax_step
from toymodels.sde import euler_maruyama

A = np.array([[2.0, 0.5], [0.5, 1.0]])


def test_gradient_flow_matches_matrix_exponential():
    # dy/dt = -A y  (gradient flow of y^T A y / 2); exact y(t) = expm(-A t) y0
    y0 = np.array([1.0, -2.0])
    ts = np.linspace(0.0, 3.0, 7)
    res = gradient_flow(negative_gradient(lambda y: 0.5 * y @ (A @ y)), jnp.asarray(y0), ts, rtol=1e-10, atol=1e-12)
    exact = np.stack([sla.expm(-A * t) @ y0 for t in ts])
    # local tolerance 1e-10 per step, tens of steps: global error well below 1e-8
    np.testing.assert_allclose(np.asarray(res.observables), exact, atol=1e-8)
    assert not bool(res.diverged) and bool(res.valid.all()) and int(res.num_steps) > 0


def test_gradient_flow_blowup_is_reported_per_point_under_vmap():
    # y' = y^2 from y0 blows up at t* = 1/y0; points with t* > t_max are unaffected
    y0s = jnp.array([0.2, 1.0, 0.5])
    ts = jnp.linspace(0.0, 1.6, 9)
    f = jax.jit(jax.vmap(lambda y0: gradient_flow(lambda t, y, a: y**2, y0, ts, observables=lambda y: y)))
    res = f(y0s)
    np.testing.assert_array_equal(np.asarray(res.diverged), [False, True, False])
    # blow-up at t*=1: first unreached save is the first save time > 1 - (reaching 1e8 takes 1e-8 before t*)
    assert float(res.diverged_time[1]) == 1.0  # |y| passes 1e8 at t = 1 - 1e-8, so the save at t = 1 is never reached
    np.testing.assert_array_equal(np.asarray(res.valid[1]), np.asarray(ts) < 1.0)
    exact = 0.2 / (1 - 0.2 * np.asarray(ts))
    np.testing.assert_allclose(np.asarray(res.observables[0]), exact, rtol=1e-7)
    assert np.all(np.isfinite(np.asarray(res.observables)))


def test_gradient_flow_rejects_bad_arguments():
    f = lambda t, y, a: -y
    with pytest.raises(ValueError, match="rtol"):
        gradient_flow(f, jnp.ones(2), [0.0, 1.0], rtol=-1.0)
    with pytest.raises(ValueError, match="ts"):
        gradient_flow(f, jnp.ones(2), [1.0, 0.0])
    with pytest.raises(ValueError, match="blowup"):
        gradient_flow(f, jnp.ones(2), [0.0, 1.0], blowup=0.0)
    with pytest.raises(ValueError, match="y0"):
        gradient_flow(f, jnp.array([1.0, jnp.nan]), [0.0, 1.0])
    with pytest.raises(ValueError, match="state0"):
        iterate(lambda s, k: s, jnp.array([jnp.inf]), 3)


def test_iterate_gd_is_the_exact_power_and_saves_every():
    lam, lr, k = np.array([1.0, 3.0]), 0.1, 40
    loss = lambda w: 0.5 * jnp.sum(jnp.asarray(lam) * w**2)
    res = iterate(gd_step(loss, lr), jnp.ones(2), k, save_every=10)
    np.testing.assert_array_equal(np.asarray(res.steps), [0, 10, 20, 30, 40])
    exact = np.stack([(1 - lr * lam) ** s for s in range(0, k + 1, 10)])
    np.testing.assert_allclose(np.asarray(res.observables), exact, rtol=1e-13)


def test_iterate_divergence_step_and_frozen_state():
    # w_k = (1 - lr)^k with lr = 3: |w_k| = 2^k exceeds 1e8 first at k = 27 (2^27 = 1.3e8)
    res = iterate(gd_step(lambda w: 0.5 * jnp.sum(w**2), 3.0), jnp.ones(1), 40, save_every=5)
    assert bool(res.diverged) and int(res.diverged_step) == 27
    np.testing.assert_array_equal(np.asarray(res.valid), np.arange(0, 41, 5) < 27)
    assert abs(float(res.final[0])) == 2.0**26  # last finite iterate
    assert np.all(np.isfinite(np.asarray(res.observables)))


def test_optax_sgd_equals_plain_gd_and_adam_decreases():
    loss = lambda w: 0.5 * jnp.sum(jnp.asarray([1.0, 3.0]) * w**2)
    init, step = optax_step(loss, optax.sgd(0.1))
    a = iterate(step, init(jnp.ones(2)), 20, observables=lambda s: s[0])
    b = iterate(gd_step(loss, 0.1), jnp.ones(2), 20)
    np.testing.assert_allclose(np.asarray(a.observables), np.asarray(b.observables), rtol=1e-14)
    init, step = optax_step(loss, optax.adam(0.05))
    c = iterate(step, init(jnp.ones(2)), 200, save_every=200, observables=lambda s: loss(s[0]))
    assert float(c.observables[-1]) < 1e-2 * float(c.observables[0])


@pytest.mark.parametrize("bad", [dict(num_steps=-1), dict(save_every=0), dict(num_steps=10, save_every=3)])
def test_iterate_rejects_bad_counts(bad):
    kw = dict(num_steps=10, save_every=1) | bad
    with pytest.raises(ValueError):
        iterate(lambda s, k: s, jnp.ones(1), kw.pop("num_steps"), **kw)


def test_euler_maruyama_ou_variance_within_monte_carlo_error():
    # EM for dX = -theta X dt + sigma dW is the AR(1) map X' = (1 - theta dt) X + sigma sqrt(dt) z:
    # Var_k = sigma^2 dt (1 - a^{2k}) / (1 - a^2), a = 1 - theta dt (exact for the discrete scheme)
    theta, sigma, dt, n = 1.0, 0.7, 0.02, 200
    res = euler_maruyama(lambda t, x: -theta * x, lambda t, x: sigma * jnp.ones(1), jnp.zeros(1),
                         jax.random.PRNGKey(3), dt=dt, num_steps=n, n_paths=40_000, save_every=50,
                         diagonal=True, observables=lambda x: x[0] ** 2)
    a = 1 - theta * dt
    k = np.arange(0, n + 1, 50)
    exact = sigma**2 * dt * (1 - a ** (2 * k)) / (1 - a**2)
    err = np.abs(np.asarray(res.mean) - exact)
    sem = np.asarray(res.sem)
    assert np.all(err[1:] <= 4 * sem[1:])  # 4 standard errors, 40k paths
    assert int(res.n_finite[-1]) == 40_000


def test_euler_maruyama_paths_do_not_depend_on_ensemble_size():
    kw = dict(dt=0.1, num_steps=10, save_every=10, diagonal=True)
    f = lambda n: euler_maruyama(lambda t, x: -x, lambda t, x: jnp.ones(2), jnp.zeros(2), jax.random.PRNGKey(0),
                                 n_paths=n, observables=lambda x: x, **kw)
    one = f(1)
    many = f(5)
    # the ensemble of 5 contains path 0; its final state equals the single-path run
    np.testing.assert_array_equal(np.asarray(many.final[0]), np.asarray(one.final[0]))


def test_euler_maruyama_divergent_paths_are_excluded():
    # dX = X^3 dt + dW from x0 = 1.2 blows up on many paths; the mean is over finite paths only
    res = euler_maruyama(lambda t, x: x**3, lambda t, x: jnp.ones(1), jnp.array([1.2]), jax.random.PRNGKey(1),
                         dt=0.01, num_steps=200, n_paths=500, save_every=100, diagonal=True)
    n_div = int(np.sum(np.asarray(res.diverged_step) >= 0))
    assert n_div > 0 and int(res.n_finite[-1]) == 500 - n_div
    assert np.all(np.isfinite(np.asarray(res.mean)))


def test_euler_maruyama_rejects_bad_arguments():
    f = lambda t, x: x
    with pytest.raises(ValueError, match="dt"):
        euler_maruyama(f, f, jnp.zeros(1), jax.random.PRNGKey(0), dt=-0.1, num_steps=1, n_paths=1)
    with pytest.raises(ValueError, match="n_paths"):
        euler_maruyama(f, f, jnp.zeros(1), jax.random.PRNGKey(0), dt=0.1, num_steps=1, n_paths=0)
    with pytest.raises(ValueError, match="x0"):
        euler_maruyama(f, f, jnp.zeros((2, 2)), jax.random.PRNGKey(0), dt=0.1, num_steps=1, n_paths=1)
