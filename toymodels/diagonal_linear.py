"""Diagonal linear networks: data, losses, gradient flow and (S)GD in JAX (spec PART A).

L(beta) = ||X beta - y||^2/(2n).  Parametrisations: (P) beta = u*v with u(0) = sqrt(2) alpha, v(0) = 0;
(W-D) beta = w+^D - w-^D with w+(0) = w-(0) = alpha (D = 2 is Woodworth et al. 2020's (W)).
Gradient flow uses toymodels.flow.gradient_flow (diffrax), GD/SGD toymodels.iterate.iterate (lax.scan).
All simulators are jit/vmap-safe in alpha and the step size. Never imports `derivations`.
"""

from __future__ import annotations

import diffrax
import jax
import jax.numpy as jnp
import numpy as np

from ._divergence import check_finite_input
from .flow import gradient_flow
from .iterate import iterate

__all__ = [
    "make_data", "loss", "beta_of", "init_uv", "uv_hessian", "sharpness",
    "gradient_flow_trajectory", "gradient_flow_limit", "implicit_bias_solution", "run_gd",
    "make_saddle_data", "gradient_flow_accelerated", "make_woodworth_data",
]


def make_data(n: int = 20, d: int = 40, k: int = 3, seed: int = 0, mu: float = 0.0):
    """Spec A.1 data: X = N(0,1)^{n x d} + mu, beta*[:k] = +-(1+U[0,1)), y = X beta* (numpy default_rng(seed)).

    Returns (X (n,d), y (n,), beta_star (d,)) as float64 numpy arrays."""
    for name, val in (("n", n), ("d", d), ("k", k)):
        if not isinstance(val, (int, np.integer)) or val < 1:
            raise ValueError(f"{name} must be a positive int, got {val!r}")
    if k > d:
        raise ValueError(f"k must be <= d, got k={k}, d={d}")
    if not np.isfinite(mu):
        raise ValueError("mu must be finite")
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) + mu
    beta = np.zeros(d)
    beta[:k] = rng.choice([-1, 1], k) * (1 + rng.random(k))
    return X, X @ beta, beta


def make_woodworth_data(n: int = 100, d: int = 1000, s: int = 5, noise_var: float = 0.01, seed: int = 1993,
                        n_test: int = 2000, exact_mvn: bool = False):
    """Azulay et al. 2021 "Woodworth" dataset (spec A.1): legacy np.random stream seeded `seed`: X ~ N(0, I)^{n x d},
    an (n_test, d) test draw, support = choice(d, s, replace=False), w*_S = 1/sqrt(s), y = X w* + sqrt(noise_var) N(0,1)^n.

    Returns (X (n,d), y (n,), w_star (d,)) as float64 numpy. Draws in the order of `shaharazulay/implicit-bias`
    (the test draw sits between X and the support, so it changes the support). multivariate_normal(0, I) is
    standard_normal @ (sqrt(s) vh) with svd(I) = (u, s, vh); where LAPACK returns vh = I this is the plain standard
    normal stream, which is used unless exact_mvn=True (slow: an SVD of a d x d matrix per draw)."""
    for name, val in (("n", n), ("d", d), ("s", s), ("n_test", n_test)):
        if not isinstance(val, (int, np.integer)) or val < 1:
            raise ValueError(f"{name} must be a positive int, got {val!r}")
    if s > d:
        raise ValueError(f"s must be <= d, got s={s}, d={d}")
    if not (np.isfinite(noise_var) and noise_var >= 0):
        raise ValueError(f"noise_var must be finite and >= 0, got {noise_var!r}")
    rs = np.random.RandomState(seed)
    if exact_mvn:
        X = rs.multivariate_normal(np.zeros(d), np.eye(d), size=n)
        rs.multivariate_normal(np.zeros(d), np.eye(d), size=n_test)
    else:
        X = rs.standard_normal((n, d))
        rs.standard_normal((n_test, d))
    w_star = np.zeros(d)
    w_star[rs.choice(np.arange(d), s, replace=False)] = 1.0 / np.sqrt(s)
    y = X @ w_star + np.sqrt(noise_var) * rs.randn(n)
    return X, y, w_star


def _check_problem(X, y):
    if isinstance(X, jax.core.Tracer) or isinstance(y, jax.core.Tracer):
        return jnp.asarray(X), jnp.asarray(y)
    X = jnp.asarray(X, dtype=jnp.float64)
    y = jnp.asarray(y, dtype=jnp.float64)
    if X.ndim != 2:
        raise ValueError(f"X must be (n, d), got shape {X.shape}")
    if y.shape != (X.shape[0],):
        raise ValueError(f"y must have shape ({X.shape[0]},), got {y.shape}")
    check_finite_input("X", X)
    check_finite_input("y", y)
    return X, y


def _check_positive(name, val):
    if isinstance(val, jax.core.Tracer):
        return
    arr = np.asarray(val, dtype=float)
    if not np.all(np.isfinite(arr)) or not np.all(arr > 0):
        raise ValueError(f"{name} must be positive and finite, got {val!r}")


def loss(beta, X, y):
    """L(beta) = ||X beta - y||^2/(2n); beta (d,), X (n,d), y (n,) -> scalar."""
    r = X @ beta - y
    return 0.5 * jnp.mean(r**2)


def beta_of(params, depth: int | None = None):
    """Predictor: (u, v) -> u*v (P, depth=None); (w+, w-) with depth D -> w+^D - w-^D (W-D)."""
    a, b = params
    return a * b if depth is None else a**depth - b**depth


def init_uv(alpha, d: int):
    """(P) initialisation u = sqrt(2) alpha 1, v = 0 (conserved u^2 - v^2 = 2 alpha^2 under GF)."""
    _check_positive("alpha", alpha)
    return (jnp.sqrt(2.0) * alpha * jnp.ones(d), jnp.zeros(d))


def uv_hessian(u, v, X, y):
    """Hessian of F(u, v) = L(u*v) w.r.t. the stacked (u, v) (2d, 2d), by jax.hessian."""
    d = u.shape[0]
    F = lambda w: loss(w[:d] * w[d:], X, y)
    return jax.hessian(F)(jnp.concatenate([u, v]))


def sharpness(u, v, X, y):
    """lambda_max (largest algebraic eigenvalue, eigvalsh) of the (u, v) Hessian of L(u*v)."""
    return jnp.linalg.eigvalsh(uv_hessian(u, v, X, y))[-1]


def gradient_flow_trajectory(X, y, alpha, ts, *, rtol=1e-10, atol=1e-12, max_steps=400_000):
    """Full 2d-parameter GF of (P): u' = -g v, v' = -g u, u(0) = sqrt2 alpha, v(0) = 0 (Tsit5).

    Returns (beta (len(ts), d), FlowResult) with beta = u*v at the save times ts."""
    X, y = _check_problem(X, y)
    _check_positive("alpha", alpha)
    F = lambda p: loss(p[0] * p[1], X, y)
    grad = jax.grad(F)

    def vf(t, p, args):
        gu, gv = grad(p)
        return (-gu, -gv)

    res = gradient_flow(vf, init_uv(alpha, X.shape[1]), ts, observables=lambda p: p[0] * p[1],
                        rtol=rtol, atol=atol, max_steps=max_steps)
    return res.observables, res


def gradient_flow_limit(X, y, alpha, *, t_max=2e4, depth: int = 2, rtol=1e-10, atol=1e-12, max_steps=100_000,
                        solver=None, return_result=False):
    """Simulated GF of (W-D) beta = w+^D - w-^D from w+ = w- = alpha, integrated to t_max; returns beta(t_max) (d,).

    Integrates the full 2d-parameter flow w+' = -D w+^{D-1} g, w-' = D w-^{D-1} g in log coordinates
    rho = ln w (exact change of variables, w > 0), implicit Kvaerno5 (the flow is stiff for small alpha).
    With return_result=True returns (beta, FlowResult) whose observables are (w+, w-) stacked, shape (2, 2, d)."""
    X, y = _check_problem(X, y)
    _check_positive("alpha", alpha)
    _check_positive("t_max", t_max)
    if not isinstance(depth, int) or depth < 2:
        raise ValueError(f"depth must be an int >= 2, got {depth!r}")
    n, d = X.shape
    D = depth

    def vf(t, rho, args):
        rp, rm = rho
        beta = jnp.exp(D * rp) - jnp.exp(D * rm)
        g = X.T @ (X @ beta - y) / n
        return (-D * jnp.exp((D - 2) * rp) * g, D * jnp.exp((D - 2) * rm) * g)

    solver = diffrax.Kvaerno5() if solver is None else solver
    rho0 = (jnp.log(alpha) * jnp.ones(d), jnp.log(alpha) * jnp.ones(d))
    obs = lambda rho: jnp.stack([jnp.exp(rho[0]), jnp.exp(rho[1])])  # (w+, w-)
    res = gradient_flow(vf, rho0, jnp.array([0.0, t_max]), observables=obs, rtol=rtol, atol=atol,
                        solver=solver, max_steps=max_steps, blowup=1e4)
    w = res.observables[-1]
    beta = w[0] ** D - w[1] ** D
    return (beta, res) if return_result else beta


def implicit_bias_solution(X, y, alpha, *, num_iter: int = 100):
    """Exact argmin Q_alpha(beta) s.t. X beta = y for (W) (Woodworth 2020): beta = 2 alpha^2 sinh(X^T nu), nu the
    dual minimiser of sum 2a^2 cosh(X^T nu) - y^T nu, by damped Newton in JAX (jit/vmap-safe in alpha); -> (d,)."""
    X, y = _check_problem(X, y)
    _check_positive("alpha", alpha)
    a = 2.0 * alpha**2

    def dual(nu):
        return jnp.sum(a * jnp.cosh(X.T @ nu)) - y @ nu

    gradf, hessf = jax.grad(dual), jax.hessian(dual)

    def body(nu, _):
        gr, hs = gradf(nu), hessf(nu)
        step = jnp.linalg.solve(hs, gr)
        f0 = dual(nu)
        dec = gr @ step
        ts = 0.5 ** jnp.arange(60.0)
        fs = jax.vmap(lambda t: dual(nu - t * step))(ts)
        rs = jax.vmap(lambda t: jnp.linalg.norm(gradf(nu - t * step)))(ts)
        # Armijo on the dual, or (at its round-off floor near the optimum) decrease of the residual X beta - y
        ok = jnp.isfinite(fs) & ((fs <= f0 - 0.25 * ts * dec) | (rs < (1.0 - 0.25 * ts) * jnp.linalg.norm(gr)))
        t = jnp.where(jnp.any(ok), ts[jnp.argmax(ok)], 0.0)
        return nu - t * step, None

    nu, _ = jax.lax.scan(body, jnp.zeros(X.shape[0]), None, length=num_iter)
    return a * jnp.sinh(X.T @ nu)


def run_gd(X, y, alpha, gamma, num_steps: int, *, key=None, batch_size: int | None = None, save_every=None,
           blowup=1e6, schedule=None):
    """GD (key=None) or SGD (batch of `batch_size` uniform indices, with replacement) on (P) beta = u*v:
    u <- u - gamma g v, v <- v - gamma g u (simultaneous), from u = sqrt2 alpha, v = 0 (Even et al. 2023).

    Also accumulates, per coordinate, sum ln(1 - gamma^2 g^2), sum (artanh(gamma g) - gamma g), max |gamma g|,
    and int L dt = gamma sum_k L(beta_k) (full-batch L). `schedule(k)` (jit-safe) multiplies gamma at step k.
    Returns the IterateResult (final state dict; observables = full-batch loss every `save_every` steps)."""
    X, y = _check_problem(X, y)
    _check_positive("alpha", alpha)
    _check_positive("gamma", gamma)
    if not isinstance(num_steps, int) or num_steps < 1:
        raise ValueError(f"num_steps must be a positive int, got {num_steps!r}")
    n, d = X.shape
    if schedule is not None and not callable(schedule):
        raise TypeError("schedule must be a callable k -> step-size multiplier")
    if key is not None:
        batch_size = 1 if batch_size is None else batch_size
        if not isinstance(batch_size, int) or not 1 <= batch_size <= n:
            raise ValueError(f"batch_size must be an int in [1, {n}], got {batch_size!r}")
    u0, v0 = init_uv(alpha, d)
    zeros = jnp.zeros(d)
    state0 = dict(u=u0, v=v0, sum_log1m=zeros, sum_atanh=zeros, max_gg=jnp.zeros(()), int_loss=jnp.zeros(()))

    def step(s, k):
        beta = s["u"] * s["v"]
        r = X @ beta - y
        if key is None:
            g = X.T @ r / n
        else:
            idx = jax.random.randint(jax.random.fold_in(key, k), (batch_size,), 0, n)
            g = X[idx].T @ r[idx] / batch_size
        gk = gamma if schedule is None else gamma * schedule(k)
        gg = gk * g
        return dict(
            u=s["u"] - gg * s["v"], v=s["v"] - gg * s["u"],
            sum_log1m=s["sum_log1m"] + jnp.log(jnp.abs(1.0 - gg**2)),
            sum_atanh=s["sum_atanh"] + jnp.arctanh(jnp.clip(gg, -1.0 + 1e-16, 1.0 - 1e-16)) - gg,
            max_gg=jnp.maximum(s["max_gg"], jnp.max(jnp.abs(gg))),
            int_loss=s["int_loss"] + gk * 0.5 * jnp.mean(r**2),
        )

    save_every = num_steps if save_every is None else save_every
    obs = lambda s: loss(s["u"] * s["v"], X, y)
    return iterate(step, state0, num_steps, save_every=save_every, observables=obs,
                   monitor=lambda s: (s["u"], s["v"]), blowup=blowup)


def make_saddle_data(n: int = 10, d: int = 20, seed: int = 3, head=(3.0, -2.0, 1.5, 1.0)):
    """Spec A.3.7 instance: X = N(0,1)^{n x d} (default_rng(seed)), beta* = (head, 0, ...), y = X beta*."""
    if not isinstance(n, (int, np.integer)) or not isinstance(d, (int, np.integer)) or n < 1 or d < len(head):
        raise ValueError(f"need positive ints n, d >= len(head), got n={n!r}, d={d!r}")
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    beta = np.zeros(d)
    beta[: len(head)] = head
    return X, X @ beta, beta


def gradient_flow_accelerated(X, y, alpha, taus, *, rtol=1e-8, atol=1e-10, max_steps=200_000):
    """(P) GF in accelerated time tau = t/ln(1/alpha), in log coordinates p = ln(u+v), m = ln(u-v):
    dp/dtau = -ln(1/alpha) g, dm/dtau = +ln(1/alpha) g, beta = (e^{2p} - e^{2m})/4, p(0) = m(0) = ln(sqrt2 alpha).

    Exact for the full 2d-parameter flow (u+v, u-v stay positive); float64 handles alpha down to ~1e-70.
    Returns (beta (len(taus), d), FlowResult)."""
    X, y = _check_problem(X, y)
    _check_positive("alpha", alpha)
    n, d = X.shape
    lam = -jnp.log(alpha)

    def beta_pm(pm):
        return 0.25 * (jnp.exp(2 * pm[0]) - jnp.exp(2 * pm[1]))

    def vf(t, pm, args):
        g = X.T @ (X @ beta_pm(pm) - y) / n
        return jnp.stack([-lam * g, lam * g])

    p0 = (0.5 * jnp.log(2.0) - lam) * jnp.ones((2, d))
    res = gradient_flow(vf, p0, taus, observables=beta_pm, rtol=rtol, atol=atol, max_steps=max_steps,
                        solver=diffrax.Kvaerno5(), blowup=1e4)
    return res.observables, res
