"""Deep linear networks: sympy identities, closed forms vs independent numerics (scipy on separately written ODEs),
simulators vs closed forms, registered experiments in quick mode, bad input.

Tolerances: scipy solve_ivp at rtol 1e-12 (global error <~1e-9 on O(1) trajectories), quad at epsabs 1e-13;
the package's diffrax runs at rtol 1e-10 (global error <~1e-7 = 1e3 rtol over the horizons used).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.integrate import quad, solve_ivp

import derivations.deep_linear as th
import toymodels.deep_linear as dl
from derivations.codegen import check_identities


def test_identities_all_pass():
    res = check_identities(th.IDENTITIES, "deep_linear")
    bad = [(r.name, r.residual) for r in res if not r.passed]
    assert not bad, bad
    assert len(res) >= 20


# ----------------------------------------------------------------------------------------------------------------
# closed forms vs spec reference numbers and independent numerics


def test_saxe_reference_numbers_from_spec():
    # spec A.2: s = 2, u0 = 1e-3, tau = 1: t_half = 0.25 ln(1999) = 1.9001006, u(1) = 0.0531732
    assert abs(float(th.learning_time(2.0, 1e-3)) - 1.9001006) < 1e-7
    assert abs(float(th.saxe_mode(1.0, 2.0, 1e-3)) - 0.0531732) < 1e-7
    assert abs(float(th.saxe_mode(th.learning_time(2.0, 1e-3), 2.0, 1e-3)) - 1.0) < 1e-12


@pytest.mark.parametrize("s,u0,tau", [(2.0, 1e-3, 1.0), (0.5, 1e-2, 2.0), (3.0, 4.0, 0.5)])
def test_saxe_mode_vs_scipy(s, u0, tau):
    ts = np.linspace(0, 6 * tau / s * np.log(1 + s / u0), 40)
    sol = solve_ivp(lambda t, u: 2 * u * (s - u) / tau, (0, ts[-1]), [u0], t_eval=ts, rtol=1e-12, atol=1e-15)
    assert np.max(np.abs(sol.y[0] - np.asarray(th.saxe_mode(ts, s, u0, tau)))) < 1e-9 * max(s, u0)


def test_learning_time_limit_and_frac():
    # (tau/2s) ln(s/u0) up to a relative O(u0/s) correction
    s, u0 = 2.0, 1e-8
    assert abs(float(th.learning_time(s, u0, 3.0)) - 3.0 / (2 * s) * np.log(s / u0)) < 1e-6
    for f in (0.1, 0.9):
        t = th.learning_time(s, 1e-3, 1.0, f)
        assert abs(float(th.saxe_mode(t, s, 1e-3)) - f * s) < 1e-12


@pytest.mark.parametrize("N", [2, 3, 4])
def test_depth_mode_time_vs_quadrature(N):
    s, u0, tau = 1.7, 0.02, 1.3
    for u in (0.05, 0.5, 1.0, 1.6, 1.69):
        ref = tau / N * quad(lambda v: 1 / (v ** (2 - 2 / N) * (s - v)), u0, u, epsabs=1e-13, epsrel=1e-12)[0]
        assert abs(float(th.depth_mode_time(u, s, u0, N, tau)) - ref) < 1e-9 * max(1, ref)


@pytest.mark.parametrize("N", [2, 3, 4])
def test_depth_mode_vs_scipy(N):
    s, u0 = 2.0, 0.05
    ts = np.linspace(0, 8, 17)
    sol = solve_ivp(lambda t, u: N * u ** (2 - 2 / N) * (s - u), (0, 8), [u0], t_eval=ts, rtol=1e-12, atol=1e-15)
    assert np.max(np.abs(np.asarray(th.depth_mode(ts, s, u0, N)) - sol.y[0])) < 1e-8
    if N == 2:
        assert np.max(np.abs(np.asarray(th.depth_mode(ts, s, u0, 2)) - np.asarray(th.saxe_mode(ts, s, u0)))) < 1e-12


def _lambda_balanced_numpy(rng, n_in, h, n_out, lam, scale=0.5):
    W2 = scale * rng.normal(size=(n_out, h))
    ev, Q = np.linalg.eigh(lam * np.eye(h) + W2.T @ W2)
    O = np.linalg.qr(rng.normal(size=(n_in, h)))[0].T
    return (Q * np.sqrt(ev)) @ Q.T @ O, W2


def _two_layer_scipy(W1, W2, S, ts, tau=1.0):
    h, n_in = W1.shape

    def f(t, y):
        A, B = y[: h * n_in].reshape(h, n_in), y[h * n_in :].reshape(-1, h)
        E = S - B @ A
        return np.concatenate([(B.T @ E).ravel(), (E @ A.T).ravel()]) / tau

    sol = solve_ivp(f, (0, ts[-1]), np.concatenate([W1.ravel(), W2.ravel()]), t_eval=ts, method="DOP853",
                    rtol=1e-12, atol=1e-14)
    return np.array([sol.y[h * n_in :, k].reshape(-1, h) @ sol.y[: h * n_in, k].reshape(h, n_in) for k in range(len(ts))])


@pytest.mark.parametrize("shape,lam,tau", [((3, 3, 2), 0.5, 1.0), ((4, 2, 3), 0.0, 1.0), ((3, 3, 3), 2.0, 0.7),
                                           ((2, 2, 3), -0.05, 1.0)])
def test_two_layer_solution_vs_scipy(shape, lam, tau):
    rng = np.random.default_rng(1)
    n_in, h, n_out = shape
    S = rng.normal(size=(n_out, n_in))
    if lam >= 0:
        W1, W2 = _lambda_balanced_numpy(rng, n_in, h, n_out, lam)
    else:  # W2^T W2 = W1 W1^T - lam I (needs h <= n_out)
        W2t, W1t = _lambda_balanced_numpy(rng, n_out, h, n_in, -lam)
        W1, W2 = W1t.T, W2t.T
    C = W1 @ W1.T - W2.T @ W2
    assert np.allclose(C, lam * np.eye(h), atol=1e-12)
    ts = np.linspace(0, 25, 11)
    ref = _two_layer_scipy(W1, W2, S, ts, tau)
    got = np.asarray(th.two_layer_solution(ts, W1, W2, S, tau))
    assert np.max(np.abs(got - ref)) < 1e-8 * max(1.0, np.abs(S).max())
    # the chained evaluation composes the exact flow map: substeps only change roundoff
    got1 = np.asarray(th.two_layer_solution(ts, W1, W2, S, tau, substeps=1))
    assert np.max(np.abs(got1 - got)) < 1e-10


def test_tarmoun_rate_matches_linearisation():
    # the error of one aligned mode near the minimum decays at a^2 + b^2 (scipy on the scalar two-layer flow)
    s, lam = 0.7, 1.5
    a2 = (lam + np.sqrt(lam**2 + 4 * s**2)) / 2
    a, b = np.sqrt(a2), s / np.sqrt(a2)
    d = 1e-4
    sol = solve_ivp(lambda t, y: [y[1] * (s - y[0] * y[1]), y[0] * (s - y[0] * y[1])], (0, 6), [a, b - d / a],
                    t_eval=[2.0, 6.0], rtol=1e-12, atol=1e-16)
    e = s - sol.y[0] * sol.y[1]
    rate = np.log(e[0] / e[1]) / 4.0
    assert abs(rate - float(th.tarmoun_rate(s, lam))) < 1e-3 * rate  # O(d) nonlinear correction


def test_gd_imbalance_change_vs_numpy_step():
    rng = np.random.default_rng(2)
    W1, W2, S = rng.normal(size=(4, 3)), rng.normal(size=(2, 4)), rng.normal(size=(2, 3))
    lr = 0.03
    E = S - W2 @ W1
    N1, N2 = W1 + lr * W2.T @ E, W2 + lr * E @ W1.T
    ref = (N1 @ N1.T - N2.T @ N2) - (W1 @ W1.T - W2.T @ W2)
    got = np.asarray(th.gd_imbalance_change(W1, W2, S, lr))
    assert np.max(np.abs(got - ref)) < 1e-12


@pytest.mark.parametrize("N", [2, 3, 4])
def test_arora_field_equals_layerwise_product_derivative(N):
    # for a balanced init the product's derivative under the layer-wise flow (chain rule, numpy) equals arora_field
    rng = np.random.default_rng(N)
    d = 3
    Os = [np.linalg.qr(rng.normal(size=(d, d)))[0] for _ in range(N + 1)]
    g = np.abs(rng.normal(size=d)) + 0.2
    Ws = [(Os[j + 1] * g) @ Os[j].T for j in range(N)]
    S = rng.normal(size=(d, d))

    def prod(ms):
        out = np.eye(d)
        for M in ms:
            out = M @ out
        return out

    W = prod(Ws)
    E = S - W
    ref = sum(prod(Ws[j + 1 :]) @ (prod(Ws[j + 1 :]).T @ E @ prod(Ws[:j]).T) @ prod(Ws[:j]) for j in range(N))
    assert np.max(np.abs(np.asarray(th.arora_field(W, S, N)) - ref)) < 1e-10


def test_width_one_solution_vs_scipy():
    s, p0 = np.array([3.0, 2.0, 1.0]), np.array([1e-5, 1e-2, 0.05])
    ts = np.linspace(0, 14, 29)
    sol = solve_ivp(lambda t, p: p * (s - p @ p), (0, 14), p0, t_eval=ts, rtol=1e-12, atol=1e-16)
    assert np.max(np.abs(np.asarray(th.width_one_solution(ts, p0, s)) - sol.y.T**2)) < 1e-8


def _reduced_width_one(ts, a0, b0, sigma0, s, N):
    """Independent reference: the reduced flow sigma' = N sigma^(2-2/N)(rho - sigma), a' = sigma^(1-2/N)(S b - rho a),
    b' = sigma^(1-2/N)(S^T a - rho b) integrated directly in t with scipy (no clock, no closed form)."""
    d_out, d_in = len(a0), len(b0)
    S = np.zeros((d_out, d_in))
    S[np.arange(len(s)), np.arange(len(s))] = s

    def rhs(t, y):
        sg, a, b = y[0], y[1 : 1 + d_out], y[1 + d_out :]
        rho = a @ S @ b
        c = sg ** (1 - 2 / N)
        return np.concatenate([[N * sg ** (2 - 2 / N) * (rho - sg)], c * (S @ b - rho * a), c * (S.T @ a - rho * b)])

    sol = solve_ivp(rhs, (0, ts[-1]), np.concatenate([[sigma0], a0, b0]), t_eval=ts, rtol=1e-12, atol=1e-14,
                    method="DOP853")
    return sol.y[0], sol.y[1 : 1 + d_out].T, sol.y[1 + d_out :].T


@pytest.mark.parametrize("N", [2, 3, 4])
def test_width_one_deep_closed_form_vs_reduced_ode(N):
    rng = np.random.default_rng(N)
    a0, b0 = rng.normal(size=4), rng.normal(size=5)
    a0, b0 = a0 / np.linalg.norm(a0), b0 / np.linalg.norm(b0)
    s = np.array([2.0, 1.5, 0.5])  # one null direction in the output space (4 > 3), two in the input space (5 > 3)
    ts = np.linspace(0, 8, 33)
    sol = th.width_one_deep_solution(ts, a0, b0, 0.1, s, N)
    sig, a, b = _reduced_width_one(ts, a0, b0, 0.1, s, N)
    # both are scipy solutions at rtol 1e-12 of O(1) smooth problems: global error well below 1e-8
    assert np.max(np.abs(sol["sigma"] - sig) / sig) < 1e-8
    assert np.max(np.abs(sol["a"] - a)) < 1e-8 and np.max(np.abs(sol["b"] - b)) < 1e-8
    assert np.max(np.abs(sol["rho"] - np.einsum("ti,ti,i->t", a[:, :3], b[:, :3], s))) < 1e-8
    assert abs(sol["sigma"][-1] - s[0]) < 1e-3  # generic start: the global minimum


def test_width_one_null_decay_two_routes():
    e = np.array([0.0, 0.0, 1.0])
    ts = np.linspace(0, 50, 11)
    for N in (2, 3, 4):
        sol = th.width_one_deep_solution(ts, e, e, 0.3, np.array([1.0, 0.5]), N)
        assert np.max(np.abs(sol["sigma"] / np.asarray(th.width_one_null_decay(ts, 0.3, N)) - 1)) < 1e-9


def test_width_one_layerwise_flow_vs_closed_form():
    """Full layer-wise GF (diffrax, hidden widths (3, 1, 2)) from init_width_one vs the exact reduction."""
    s = np.array([2.0, 1.0])
    prob = dl.make_problem(s, 3, 3, seed=None)
    a0, b0 = np.array([0.3, -0.5, 0.2]), np.array([0.1, 0.6, -0.4])
    a0, b0 = a0 / np.linalg.norm(a0), b0 / np.linalg.norm(b0)
    ts = np.linspace(0, 10, 41)
    res = dl.simulate_flow(prob, dl.init_width_one(a0, b0, 0.2, (3, 1, 2)), jnp.asarray(ts), observables=dl.product)
    W = np.asarray(res.observables)
    sol = th.width_one_deep_solution(ts, a0, b0, 0.2, s, 4)
    sig = np.linalg.norm(W, axis=(1, 2))
    assert np.max(np.abs(sig / sol["sigma"] - 1)) < 1e-7  # 1e3 x rtol
    assert np.max(np.abs(W - sol["sigma"][:, None, None] * sol["a"][:, :, None] * sol["b"][:, None, :])) < 1e-7
    # the product stays rank one and the net balanced
    assert np.max(np.linalg.svd(W, compute_uv=False)[:, 1]) < 1e-9


# ----------------------------------------------------------------------------------------------------------------
# simulators


def test_vector_field_is_negative_gradient():
    prob = dl.make_problem([2.0, 1.0], 3, 2, seed=0)
    residual = jax.jit(lambda ws: [a + b for a, b in zip(dl.vector_field(0.0, ws, prob), jax.grad(dl.loss)(ws, prob))])
    for dims in ((3, 4, 2), (3, 4, 5, 2)):
        ws = dl.init_random(jax.random.PRNGKey(1), dims, 1.0)
        for r in residual(ws):
            assert np.max(np.abs(np.asarray(r))) < 1e-12


def test_balanced_aligned_init_structure():
    prob = dl.make_problem([3.0, 1.0], 4, 3, seed=0)
    for N in (2, 3):
        ws = dl.init_balanced_aligned(prob, jnp.array([0.1, 0.02]), 5, N, seed=3)
        assert np.allclose(dl.mode_strengths(ws, prob), [0.1, 0.02], atol=1e-14)
        for C in dl.imbalance(ws):
            assert np.max(np.abs(np.asarray(C))) < 1e-14
    W1, W2 = dl.init_lambda_balanced(jax.random.PRNGKey(0), 4, 3, 2, 0.5, 0.7)
    assert np.allclose(dl.imbalance((W1, W2))[0], 0.7 * np.eye(3), atol=1e-12)
    ws = dl.init_balanced_random(jax.random.PRNGKey(0), 3, 3, 0.5)
    for C in dl.imbalance(ws):
        assert np.max(np.abs(np.asarray(C))) < 1e-12


def test_simulate_flow_follows_saxe():
    prob = dl.make_problem([2.0, 1.0], 3, 2, seed=0)
    ws0 = dl.init_balanced_aligned(prob, 1e-3, 2, 2, seed=1)
    ts = jnp.linspace(0, 8, 17)
    res = dl.simulate_flow(prob, ws0, ts, observables=lambda ws: dl.mode_strengths(ws, prob))
    theory = np.asarray(th.saxe_mode(np.asarray(ts)[:, None], np.array([2.0, 1.0]), 1e-3))
    assert not bool(res.diverged)
    assert np.max(np.abs(np.asarray(res.observables) - theory)) < 1e-7  # 1e3 x rtol(1e-10)


def test_simulate_gd_one_step_is_exact_gd():
    prob = dl.make_problem([2.0, 1.0], 3, 2, seed=0)
    ws0 = dl.init_random(jax.random.PRNGKey(0), (3, 4, 2), 0.5)
    res = dl.simulate_gd(prob, ws0, 0.1, 1)
    g = jax.grad(dl.loss)(ws0, prob)
    for a, w, gi in zip(res.final, ws0, g):
        assert np.max(np.abs(np.asarray(a - (w - 0.1 * gi)))) < 1e-14


# ----------------------------------------------------------------------------------------------------------------
# registered experiments in quick mode (theory vs simulation per claim)

FAST = ["saxe", "conservation_gd", "gd_vs_gf"]
SLOW = ["conservation_gf", "tarmoun", "depth", "arora", "width_one", "width_one_stages"]


def _validate(name, results_dir):
    from sims.run import validate_experiment

    checks = validate_experiment(f"deep_linear.{name}", quick=True, out=results_dir, progress=False)
    bad = [(c.claim, c.error, c.tolerance, c.note) for c in checks if not c.passed]
    assert checks and not bad, bad


@pytest.mark.parametrize("name", FAST)
def test_experiment_quick(name, results_dir):
    _validate(name, results_dir)


@pytest.mark.slow
@pytest.mark.parametrize("name", SLOW)
def test_experiment_quick_slow(name, results_dir):
    _validate(name, results_dir)


# ----------------------------------------------------------------------------------------------------------------
# bad input


def test_bad_inputs():
    with pytest.raises(ValueError, match="s"):
        th.saxe_mode(1.0, -1.0, 1e-3)
    with pytest.raises(ValueError, match="u0"):
        th.saxe_mode(1.0, 1.0, 0.0)
    with pytest.raises(ValueError, match="tau"):
        th.saxe_mode(1.0, 1.0, 1e-3, tau=0.0)
    with pytest.raises(ValueError, match="frac"):
        th.learning_time(1.0, 1e-3, frac=1.0)
    with pytest.raises(ValueError, match="u0"):
        th.learning_time(1.0, 0.8)
    with pytest.raises(ValueError, match="depth"):
        th.depth_mode(1.0, 1.0, 0.1, 1)
    with pytest.raises(ValueError, match="depth"):
        th.depth_mode_time(0.5, 1.0, 0.1, 5)
    with pytest.raises(ValueError, match="lam I"):
        th.two_layer_solution([0.0, 1.0], np.eye(2), np.array([[1.0, 0.3], [0.0, 1.0]]), np.eye(2))
    with pytest.raises(ValueError, match="chain"):
        th.two_layer_solution([0.0, 1.0], np.eye(2), np.eye(3), np.eye(2))
    with pytest.raises(ValueError, match="t must"):
        th.two_layer_solution([1.0, 0.0], np.eye(2), np.eye(2), np.eye(2))
    with pytest.raises(ValueError, match="lr"):
        th.gd_imbalance_change(np.eye(2), np.eye(2), np.eye(2), 0.0)
    with pytest.raises(ValueError, match="depth"):
        th.arora_field(np.eye(2), np.eye(2), 1)
    with pytest.raises(ValueError, match="singular values"):
        dl.make_problem([1.0, 2.0, 3.0], 2, 4)
    with pytest.raises(ValueError, match="s must"):
        dl.make_problem([1.0, -2.0], 2, 4)
    with pytest.raises(ValueError, match="tau"):
        dl.make_problem([1.0], 2, 4, tau=-1.0)
    prob = dl.make_problem([2.0, 1.0], 3, 2, seed=0)
    with pytest.raises(ValueError, match="hidden"):
        dl.init_balanced_aligned(prob, 1e-3, 1, 2)
    with pytest.raises(ValueError, match="u0"):
        dl.init_balanced_aligned(prob, -1e-3, 2, 2)
    with pytest.raises(ValueError, match="hidden"):
        dl.init_lambda_balanced(jax.random.PRNGKey(0), 2, 3, 2, 1.0, 0.5)
    with pytest.raises(ValueError, match="lr"):
        dl.gd_step(prob, 0.0)
    ws = dl.init_random(jax.random.PRNGKey(0), (3, 2, 2), 1.0)
    with pytest.raises(ValueError, match="NaN"):
        dl.simulate_gd(prob, (ws[0].at[0, 0].set(jnp.nan), ws[1]), 0.1, 2)
    with pytest.raises(ValueError, match="problem"):
        dl.simulate_flow(prob, dl.init_random(jax.random.PRNGKey(0), (4, 2, 2), 1.0), jnp.linspace(0, 1, 3))
    with pytest.raises(TypeError, match="weights0"):
        dl.simulate_flow(prob, jnp.eye(2), jnp.linspace(0, 1, 3))
    e = np.array([1.0, 0.0])
    with pytest.raises(ValueError, match="a0"):
        th.width_one_deep_solution([0.0, 1.0], np.array([1.0, 1.0]), e, 0.1, np.array([1.0]), 3)
    with pytest.raises(ValueError, match="depth"):
        th.width_one_deep_solution([0.0, 1.0], e, e, 0.1, np.array([1.0]), 1)
    with pytest.raises(ValueError, match="sigma0"):
        th.width_one_deep_solution([0.0, 1.0], e, e, 0.0, np.array([1.0]), 2)
    with pytest.raises(ValueError, match="t must"):
        th.width_one_deep_solution([1.0, 0.0], e, e, 0.1, np.array([1.0]), 2)
    with pytest.raises(ValueError, match="s has"):
        th.width_one_direction([0.0], e, e, np.array([1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="b0"):
        dl.init_width_one(e, np.array([0.5, 0.0]), 0.1, (1,))
    with pytest.raises(ValueError, match="sigma0"):
        dl.init_width_one(e, e, -0.1, (1,))
    with pytest.raises(ValueError, match="hidden"):
        dl.init_width_one(e, e, 0.1, ())
