"""sgd_sde family, escape from a well at batch size B > 1: the exact mean escape time of the SGD Markov chain
(Nystrom) against its small-step limit (the SDE's exact MFPT with the discrete-monitoring boundary shift), the renewal
estimator's expectation against an exact renewal recursion, minibatch SGD Monte-Carlo against the chain, bad input.

Monte-Carlo checks use fixed seeds and pass within K = 4 standard errors (over independent paths).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from derivations import sgd_sde as D
from toymodels import sgd_sde as T

K = 4.0
BM_SHIFT = 0.5825971579390106  # -zeta(1/2)/sqrt(2 pi) (Siegmund): discrete monitoring moves a boundary out by this * step sd


def _chain_vs_shifted_sde(r, h_eta):
    """|tau_chain / tau_SDE(x_exit + 0.5826 sigma) - 1| at h = 1, B = 1, s = 1 (dU = r h eta / 2)."""
    dU = r * h_eta / 2.0
    w = np.sqrt(6.0 * dU)
    sigma = h_eta  # eta sqrt(s h / B) with h = 1
    chain = D.sgd_chain_mfpt(dU, w, h_eta, 1.0)
    sde = D.exact_mfpt(dU, w, h_eta / 2.0, x_exit_rel=1.5 + BM_SHIFT * sigma / w)
    return abs(chain / sde - 1.0)


def test_chain_mfpt_tends_to_sde_mfpt_with_first_order_error():
    # SGD -> SDE as eta -> 0 at fixed T: after the O(sqrt(eta)) boundary shift, what is left is O(h eta), so quartering
    # h eta must shrink it about 4x (accept >= 2.5x) and it must be small (< 2 h eta) at both barriers
    for r in (0.5, 2.0):
        e1, e2 = _chain_vs_shifted_sde(r, 0.02), _chain_vs_shifted_sde(r, 0.005)
        assert e2 < e1 / 2.5, (r, e1, e2)
        assert e1 < 2 * 0.02 and e2 < 2 * 0.005


def test_chain_mfpt_nystrom_converges_at_second_order():
    # trapezoid with a cut at x_exit: O(spacing^2); halving the spacing shrinks the change about 4x
    dU, w, eta, B = 0.03, np.sqrt(0.18), 0.12, 1.0
    m4, m8, m16 = (D.sgd_chain_mfpt(dU, w, eta, B, points_per_sigma=p) for p in (4, 8, 16))
    assert abs(m16 - m8) < abs(m8 - m4) / 2.5
    assert abs(m16 - m8) / m16 < 1e-3


def test_renewal_tau_mean_vs_exact_renewal_recursion():
    # cycle lengths X in {1, 2, 5} (aperiodic): u_n = P(renewal at n) = sum_k f_k u_{n-k}, E n(N) = sum_{n<=N} u_n
    f = {1: 0.3, 2: 0.5, 5: 0.2}
    N, eta = 200, 0.1
    u = np.zeros(N + 1)
    u[0] = 1.0
    for n in range(1, N + 1):
        u[n] = sum(p * u[n - k] for k, p in f.items() if k <= n)
    n1 = sum(k * p for k, p in f.items())
    n2 = sum(k * k * p for k, p in f.items())
    exact = N * eta / np.sum(u[1:])
    assert D.renewal_tau_mean(N, eta, n1, n2) == pytest.approx(exact, rel=1e-12)
    # the o(1) correction matters: the naive N eta / (N / n1) is off by far more
    assert abs(n1 * eta / exact - 1) > 5e-4


def test_minibatch_sgd_escape_vs_chain_two_routes():
    # T = eta h/(2B) equal for (B=1, eta=0.06) and (B=4, eta=0.24); dU/T = 0.5, h = 1
    dU, w, P, N = 0.015, 0.3, 400, 4000
    pts = [(1.0, 0.06), (4.0, 0.24)]
    f = jax.jit(jax.vmap(lambda b, e, k: T.sgd_escape_renewal(dU, w, e, b, k, n_paths=P, num_steps=N)))
    out = f(jnp.array([p[0] for p in pts]), jnp.array([p[1] for p in pts]), jax.random.split(jax.random.PRNGKey(11), 2))
    taus, ses, preds, quads = [], [], [], []
    for i, (B, eta) in enumerate(pts):
        n1, n2 = D.sgd_chain_mfpt(dU, w, eta, B, points_per_sigma=16, moments=True)
        quad = eta * abs(n1 - D.sgd_chain_mfpt(dU, w, eta, B) / eta)
        pred = D.renewal_tau_mean(N, eta, n1, n2)
        tau, se = float(out["tau"][i]), float(out["tau_sem"][i])
        assert abs(tau - pred) < K * se + quad + tau * (se / tau) ** 2, (B, eta, tau, pred, se)
        taus.append(tau), ses.append(se), preds.append(pred), quads.append(quad)
    # eta/B alone fixes the SDE (ratio 1); the chains differ at O(h eta): the measured ratio follows the chain and is
    # resolved away from 1 at this h eta
    ratio = taus[1] / taus[0]
    rse = ratio * np.hypot(ses[0] / taus[0], ses[1] / taus[1])
    assert abs(ratio - preds[1] / preds[0]) < K * rse + 2 * sum(quads) / min(preds)
    assert abs(ratio - 1.0) > K * rse


def test_bad_input_sgd_escape():
    key = jax.random.PRNGKey(0)
    with pytest.raises(ValueError, match="batch"):
        T.sgd_escape_renewal(0.1, 0.3, 0.01, 0.0, key, n_paths=4, num_steps=4)
    with pytest.raises(ValueError, match="eta"):
        T.sgd_escape_renewal(0.1, 0.3, -0.01, 1.0, key, n_paths=4, num_steps=4)
    with pytest.raises(ValueError, match="noise_scale"):
        T.sgd_escape_renewal(0.1, 0.3, 0.01, 1.0, key, noise_scale=np.nan, n_paths=4, num_steps=4)
    with pytest.raises(ValueError, match="x_exit_rel"):
        T.sgd_escape_renewal(0.1, 0.3, 0.01, 1.0, key, n_paths=4, num_steps=4, x_exit_rel=1.0)
    with pytest.raises(ValueError, match="n_paths"):
        T.sgd_escape_renewal(0.1, 0.3, 0.01, 1.0, key, n_paths=1, num_steps=4)
    with pytest.raises(ValueError, match="eta"):
        D.sgd_chain_mfpt(0.03, np.sqrt(0.18), 2.5, 1.0)  # eta h = 2.5 >= 2: unstable at the minimum
    with pytest.raises(ValueError, match="batch"):
        D.sgd_chain_mfpt(0.03, np.sqrt(0.18), 0.1, -1.0)
    with pytest.raises(ValueError, match="x_exit_rel"):
        D.sgd_chain_mfpt(0.03, np.sqrt(0.18), 0.1, 1.0, x_exit_rel=0.9)
    with pytest.raises(ValueError, match="n_max"):
        D.sgd_chain_mfpt(0.03, np.sqrt(0.18), 0.001, 1.0, n_max=100)
    with pytest.raises(ValueError, match="n2"):
        D.renewal_tau_mean(100, 0.1, 4.0, 10.0)
