"""sgd_sde family, compute-optimal batch size (Bordelon & Pehlevan 2022): the fixed-compute loss curve L_{C/B}(B)
against an independent 1-D formula and the iterated d^2 moment recursion, the sample-stream simulator against the
per-step minibatch simulator and the closed form, the experiment's argmin criterion, bad input.

Monte-Carlo checks use fixed seeds and pass within K = 4 standard errors (over independent paths).
"""

import jax
import numpy as np
import pytest

from derivations import sgd_sde as D
from toymodels import sgd_sde as T

K = 4.0
BATCHES = np.array([1, 2, 4, 8, 16, 32, 64])


def test_compute_optimal_batch_1d_closed_form():
    # d = 1, sigma = 0: c_t = r^t c_0 with r = (1 - eta l)^2 + 2 eta^2 l^2 / B (spec section 3), so at C = B t
    # L(B) = l c_0 r(B)^(C/B) / 2 -- written out here, independently of the eigh closed form
    lam, c0, eta, C = 1.3, 0.7, 0.5, 256
    r = (1 - eta * lam) ** 2 + 2 * eta**2 * lam**2 / BATCHES
    expected = 0.5 * lam * c0 * r ** (C / BATCHES)
    losses, B_star = D.compute_optimal_batch(np.array([lam]), np.array([c0]), eta, 0.0, C, BATCHES)
    np.testing.assert_allclose(losses, expected, rtol=1e-10)
    assert B_star == BATCHES[np.argmin(expected)]
    # an interior optimum exists: large batches take too few steps, B = 1 is too noisy at this eta
    assert 1 < B_star < BATCHES[-1]


def test_compute_optimal_batch_vs_iterated_recursion():
    # power-law spectrum in a rotated basis: eigh closed form vs the iterated d^2 recursion, B by B (rtol 1e-9)
    d, C, eta, s2 = 6, 128, 0.3, 0.01
    i = np.arange(1, d + 1.0)
    lam, c0 = i**-1.5, i**-1.0 / i**-1.5
    U = np.linalg.qr(np.random.default_rng(4).standard_normal((d, d)))[0]
    Sigma = (U * lam) @ U.T
    w = U @ np.sqrt(c0)
    Bs = np.array([1, 2, 4, 8, 16, 32])
    losses, B_star = D.compute_optimal_batch(lam, c0, eta, s2, C, Bs)
    rec = [float(D.moment_recursion(Sigma, np.outer(w, w), eta, int(B), s2, C // int(B))[1][-1]) for B in Bs]
    np.testing.assert_allclose(losses, rec, rtol=1e-9)
    assert B_star == Bs[int(np.argmin(rec))]


def test_compute_optimal_batch_marks_unstable_batches():
    # d = 1: mean-square stable iff eta < 2B/(l(B+2)); at eta l = 1.2 only B >= 4 are stable (B=4: 8/6 > 1.2)
    losses, B_star = D.compute_optimal_batch(np.array([1.0]), np.array([1.0]), 1.2, 0.0, 64, BATCHES)
    thr = 2 * BATCHES / (BATCHES + 2)
    assert np.array_equal(np.isinf(losses), 1.2 >= thr)
    assert np.isfinite(losses[BATCHES == B_star])


def _problem(d=4, b=1.5):
    i = np.arange(1, d + 1.0)
    lam = i**-b
    c0 = i**-1.0 / lam
    U = np.linalg.qr(np.random.default_rng(5).standard_normal((d, d)))[0]
    return lam, c0, (U * lam) @ U.T, U @ np.sqrt(c0)


def test_budget_simulator_vs_minibatch_simulator_and_theory():
    # two implementations of the same SGD law (sample stream with accumulation vs per-step (B, d) minibatches),
    # each against the closed form within K SE and against each other within K SE of the difference
    lam, c0, Sigma, w = _problem()
    eta, s, B, C, n = 0.4, 0.1, 4, 64, 4000
    a = T.least_squares_sgd_budget(Sigma, w, s, eta, float(B), jax.random.PRNGKey(1), n_paths=n, budget=C)
    m = T.least_squares_sgd(Sigma, w, s, eta, B, jax.random.PRNGKey(2), n_paths=n, num_steps=C // B,
                            save_every=C // B)
    th = float(D.learning_curve(lam, c0, eta, B, s**2, np.array([C // B]))[0])
    assert int(a["updates"]) == C // B and float(a["frac_diverged"]) == 0.0
    assert abs(float(a["loss"]) - th) <= K * float(a["loss_sem"])
    assert abs(float(m["loss"][-1]) - th) <= K * float(m["loss_sem"][-1])
    assert abs(float(a["loss"]) - float(m["loss"][-1])) <= K * np.hypot(float(a["loss_sem"]), float(m["loss_sem"][-1]))


def test_budget_simulator_vmaps_over_batch_size():
    # B traced under vmap: update counts floor(C/B), and the fixed-compute argmin of the MC is the theory's B*
    lam, c0, Sigma, w = _problem(b=2.0)
    eta, s, C, n = 0.3, 0.1, 128, 3000
    Bs = np.array([1, 2, 4, 8, 16, 32])
    f = jax.jit(jax.vmap(lambda B, k: T.least_squares_sgd_budget(Sigma, w, s, eta, B, k, n_paths=n, budget=C)))
    out = f(Bs.astype(float), jax.random.split(jax.random.PRNGKey(3), len(Bs)))
    np.testing.assert_array_equal(np.asarray(out["updates"]), C // Bs)
    th, B_star = D.compute_optimal_batch(lam, c0, eta, s**2, C, Bs)
    mc, se = np.asarray(out["loss"]), np.asarray(out["loss_sem"])
    assert np.all(np.abs(mc - th) <= K * se), (mc, th, se)
    j = int(np.argmin(mc))
    j_th = int(np.flatnonzero(Bs == B_star)[0])
    assert mc[j_th] - mc[j] <= K * np.hypot(se[j_th], se[j])


def test_bad_input_optimal_batch():
    lam, c0 = np.array([1.0, 0.5]), np.array([1.0, 1.0])
    with pytest.raises(ValueError, match="divide"):
        D.compute_optimal_batch(lam, c0, 0.1, 0.0, 100, np.array([1, 3]))
    with pytest.raises(ValueError, match="budget"):
        D.compute_optimal_batch(lam, c0, 0.1, 0.0, 0, np.array([1]))
    with pytest.raises(ValueError, match="batch_sizes"):
        D.compute_optimal_batch(lam, c0, 0.1, 0.0, 8, np.array([1.5, 2.0]))
    with pytest.raises(ValueError, match="eta"):
        D.compute_optimal_batch(lam, c0, -0.1, 0.0, 8, np.array([1, 2]))
    with pytest.raises(ValueError, match="noise_var"):
        D.compute_optimal_batch(lam, c0, 0.1, np.nan, 8, np.array([1, 2]))
    with pytest.raises(ValueError, match="lams and c0"):
        D.compute_optimal_batch(lam, c0[:1], 0.1, 0.0, 8, np.array([1, 2]))
    with pytest.raises(ValueError, match="stable"):
        D.compute_optimal_batch(np.array([1.0]), np.array([1.0]), 1.9, 0.0, 8, np.array([1, 2]))
    S, w, key = np.eye(2), np.ones(2), jax.random.PRNGKey(0)
    with pytest.raises(ValueError, match="batch_size"):
        T.least_squares_sgd_budget(S, w, 0.1, 0.1, 2.5, key, n_paths=4, budget=8)
    with pytest.raises(ValueError, match="batch_size"):
        T.least_squares_sgd_budget(S, w, 0.1, 0.1, 0.0, key, n_paths=4, budget=8)
    with pytest.raises(ValueError, match="eta"):
        T.least_squares_sgd_budget(S, w, 0.1, -0.1, 2.0, key, n_paths=4, budget=8)
    with pytest.raises(ValueError, match="budget"):
        T.least_squares_sgd_budget(S, w, 0.1, 0.1, 2.0, key, n_paths=4, budget=0)
    with pytest.raises(ValueError, match="w0"):
        T.least_squares_sgd_budget(S, w, 0.1, 0.1, 2.0, key, n_paths=4, budget=8, w0=np.array([np.nan, 0.0]))
    with pytest.raises(ValueError, match="w_star"):
        T.least_squares_sgd_budget(S, np.ones(3), 0.1, 0.1, 2.0, key, n_paths=4, budget=8)


@pytest.mark.slow
def test_quick_validation_optimal_batch(results_dir):
    from sims.run import validate_experiment

    checks = validate_experiment("sgd_sde.optimal_batch", quick=True, out=results_dir, progress=False)
    failed = [(c.claim, c.theory, c.simulated, c.error, c.tolerance) for c in checks if not c.passed]
    assert checks and not failed, failed
