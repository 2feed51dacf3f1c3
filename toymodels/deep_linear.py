"""Deep linear networks on whitened inputs: problem, initialisations, loss, gradient flow, GD, observables.

Setting: inputs with Sigma_xx = I and input-output correlation Sigma_yx = U diag(s) V^T. A depth-N network is a tuple
of weights ``(W1, ..., WN)`` (W1: h1 x n_in, ..., WN: n_out x h_{N-1}) with product W = WN ... W1 and population loss
L = 1/2 ||Sigma_yx - W||_F^2 (+ const). Gradient flow: tau dWj/dt = (WN..W_{j+1})^T E (W_{j-1}..W1)^T, E = Sigma_yx - W.

Typical use::

    prob = make_problem([3.0, 2.0, 1.0], n_in=4, n_out=3, seed=0)
    ws0 = init_balanced_aligned(prob, u0=1e-3, hidden=3, depth=2, seed=1)
    res = simulate_flow(prob, ws0, ts=jnp.linspace(0, 10, 51), observables=lambda ws: mode_strengths(ws, prob))
    res.observables   # (51, 3) mode strengths u_alpha(t) = [U^T W V]_{alpha alpha}

Everything is jit/vmap safe (singular values and init scales may be traced); input checks run on concrete values.
"""

from __future__ import annotations

from typing import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from .flow import FlowResult, gradient_flow
from .iterate import IterateResult, iterate

__all__ = [
    "Problem",
    "make_problem",
    "random_orthogonal",
    "init_balanced_aligned",
    "init_random",
    "init_lambda_balanced",
    "init_balanced_random",
    "init_width_one",
    "product",
    "loss",
    "vector_field",
    "gd_step",
    "mode_strengths",
    "imbalance",
    "simulate_flow",
    "simulate_gd",
]

Weights = tuple  # (W1, ..., WN)


class Problem(eqx.Module):
    """Whitened-input regression target: Sigma_yx = U diag(s) V^T (U: n_out x r, V: n_in x r), time constant tau."""

    sigma_yx: Float[Array, "n_out n_in"]
    U: Float[Array, "n_out r"]
    s: Float[Array, " r"]
    V: Float[Array, "n_in r"]
    tau: Float[Array, ""]


def _is_concrete(x) -> bool:
    return not isinstance(x, jax.core.Tracer)


def _check_finite_positive(name, x, allow_zero=False):
    if not _is_concrete(x):
        return
    a = np.asarray(x, dtype=float)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} must be finite, got {x!r}")
    if np.any(a < 0) or (not allow_zero and np.any(a == 0)):
        raise ValueError(f"{name} must be {'non-negative' if allow_zero else 'positive'}, got {x!r}")


def _check_int(name, x, minimum=1):
    if not isinstance(x, (int, np.integer)) or isinstance(x, bool) or x < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {x!r}")
    return int(x)


def _key(key, seed):
    if key is not None:
        return key
    if seed is None:
        return None
    return jax.random.PRNGKey(seed)


def random_orthogonal(key, n: int, m: int | None = None) -> Float[Array, "n m"]:
    """An n x m matrix with orthonormal columns (m <= n), Haar-distributed (QR of a Gaussian with sign fix)."""
    m = n if m is None else m
    if m > n:
        raise ValueError(f"random_orthogonal needs m <= n, got n={n}, m={m}")
    A = jax.random.normal(key, (n, m))
    Q, R = jnp.linalg.qr(A)
    return Q * jnp.sign(jnp.diagonal(R))[None, :]


def make_problem(s, n_in: int, n_out: int, *, key=None, seed: int | None = 0, tau=1.0) -> Problem:
    """Sigma_yx = U diag(s) V^T with Haar-random U (n_out x r), V (n_in x r) from `key`/`seed` (identity if both None).

    s: (r,) non-negative singular values, r <= min(n_in, n_out) (may be traced).
    """
    n_in, n_out = _check_int("n_in", n_in), _check_int("n_out", n_out)
    s = jnp.atleast_1d(jnp.asarray(s, dtype=float))
    if s.ndim != 1:
        raise ValueError(f"s must be a 1-D array of singular values, got shape {s.shape}")
    r = s.shape[0]
    if r > min(n_in, n_out):
        raise ValueError(f"s has {r} singular values but min(n_in, n_out) = {min(n_in, n_out)}")
    _check_finite_positive("s", s, allow_zero=True)
    _check_finite_positive("tau", tau)
    k = _key(key, seed)
    if k is None:
        U, V = jnp.eye(n_out, r), jnp.eye(n_in, r)
    else:
        ku, kv = jax.random.split(k)
        U, V = random_orthogonal(ku, n_out, r), random_orthogonal(kv, n_in, r)
    return Problem(sigma_yx=(U * s) @ V.T, U=U, s=s, V=V, tau=jnp.asarray(tau, dtype=float))


def _hidden_dims(problem, hidden, depth):
    depth = _check_int("depth", depth, minimum=1)
    if isinstance(hidden, (int, np.integer)):
        hidden = [int(hidden)] * (depth - 1)
    hidden = [_check_int("hidden", h) for h in hidden]
    if len(hidden) != depth - 1:
        raise ValueError(f"need depth-1 = {depth - 1} hidden widths, got {hidden}")
    n_out, n_in = problem.sigma_yx.shape
    return [n_in, *hidden, n_out]


def init_balanced_aligned(problem: Problem, u0, hidden, depth: int = 2, *, key=None, seed: int | None = None) -> Weights:
    """Balanced, aligned init (Saxe et al. 2014): W1 = R1 diag(a) V^T, Wj = Rj diag(a) R_{j-1}^T, WN = U diag(a) R_{N-1}^T.

    a = u0^{1/N}, so the product is U diag(u0) V^T; u0: scalar or (r,); every hidden width >= r; R_j Haar-random
    h_j x r orthonormal frames from `key`/`seed` (first r coordinates if both None).
    """
    dims = _hidden_dims(problem, hidden, depth)
    r = problem.s.shape[0]
    if min(dims[1:-1], default=r) < r:
        raise ValueError(f"hidden widths {dims[1:-1]} must be >= the number of modes r = {r}")
    _check_finite_positive("u0", u0, allow_zero=True)
    u0 = jnp.broadcast_to(jnp.asarray(u0, dtype=float), (r,))
    a = u0 ** (1.0 / depth)
    k = _key(key, seed)
    frames = [problem.V]
    for j, h in enumerate(dims[1:-1]):
        frames.append(jnp.eye(h, r) if k is None else random_orthogonal(jax.random.fold_in(k, j), h, r))
    frames.append(problem.U)
    return tuple((frames[j + 1] * a) @ frames[j].T for j in range(depth))


def init_random(key, dims: Sequence[int], scale=1.0) -> Weights:
    """Gaussian init Wj ~ scale * N(0, 1/d_{j-1}) of shape (dims[j+1], dims[j]); dims = (n_in, h1, ..., n_out). Unbalanced."""
    dims = [_check_int("dims", d) for d in dims]
    if len(dims) < 2:
        raise ValueError(f"dims needs at least (n_in, n_out), got {dims}")
    _check_finite_positive("scale", scale, allow_zero=True)
    keys = jax.random.split(key, len(dims) - 1)
    return tuple(
        scale * jax.random.normal(keys[j], (dims[j + 1], dims[j])) / jnp.sqrt(dims[j]) for j in range(len(dims) - 1)
    )


def init_lambda_balanced(key, n_in: int, hidden: int, n_out: int, scale=1.0, lam=0.0) -> Weights:
    """Non-aligned two-layer init with imbalance W1 W1^T - W2^T W2 = lam I_h (Tarmoun et al. 2021).

    W2 = scale * N(0, 1/h) (n_out x h); W1 = (lam I + W2^T W2)^{1/2} O, O an h x n_in Haar frame (needs h <= n_in and
    lam > -sigma_min(W2)^2, checked when concrete).
    """
    n_in, hidden, n_out = (_check_int(n, v) for n, v in (("n_in", n_in), ("hidden", hidden), ("n_out", n_out)))
    if hidden > n_in:
        raise ValueError(f"lam-balanced init needs hidden <= n_in, got hidden={hidden}, n_in={n_in}")
    _check_finite_positive("scale", scale, allow_zero=True)
    k2, ko = jax.random.split(key)
    W2 = scale * jax.random.normal(k2, (n_out, hidden)) / jnp.sqrt(hidden)
    M = lam * jnp.eye(hidden) + W2.T @ W2
    ev, Q = jnp.linalg.eigh(M)
    if _is_concrete(ev) and _is_concrete(lam) and float(jnp.min(ev)) <= 0:
        raise ValueError(f"lam={lam!r} too negative: lam I + W2^T W2 must be positive definite")
    O = random_orthogonal(ko, n_in, hidden).T
    W1 = (Q * jnp.sqrt(jnp.clip(ev, 0.0, None))) @ Q.T @ O
    return (W1, W2)


def init_balanced_random(key, dim: int, depth: int, scale=1.0) -> Weights:
    """Balanced but non-aligned square depth-N init W_j = O_j diag(scale * g) O_{j-1}^T (Arora et al. 2018).

    O_0..O_N Haar d x d, g ~ |N(0,1)|; W_{j+1}^T W_{j+1} = W_j W_j^T exactly.
    """
    dim, depth = _check_int("dim", dim), _check_int("depth", depth)
    _check_finite_positive("scale", scale, allow_zero=True)
    keys = jax.random.split(key, depth + 2)
    Os = [random_orthogonal(keys[j], dim) for j in range(depth + 1)]
    g = scale * jnp.abs(jax.random.normal(keys[-1], (dim,)))
    return tuple((Os[j + 1] * g) @ Os[j].T for j in range(depth))


def init_width_one(a0, b0, sigma0, hidden: Sequence[int]) -> Weights:
    """Balanced rank-one start with product sigma0 a0 b0^T (Chen, Lin & Zhang 2022): W1 = k e1 b0^T,
    Wj = k e_j e_{j-1}^T, WN = k a0 e_{N-1}^T, k = sigma0^{1/N}, e_j = (1, 2, .., h_j)/norm; at least one h_j = 1 makes
    it a network with a width-one layer (the flow keeps the product rank one). a0, b0: unit vectors."""
    hidden = [_check_int("hidden", h) for h in hidden]
    if not hidden:
        raise ValueError("hidden must list at least one hidden width (depth >= 2)")
    _check_finite_positive("sigma0", sigma0)
    a0, b0 = jnp.asarray(a0, dtype=float), jnp.asarray(b0, dtype=float)
    for name, v in (("a0", a0), ("b0", b0)):
        if v.ndim != 1:
            raise ValueError(f"{name} must be a 1-D unit vector, got shape {v.shape}")
        if _is_concrete(v) and abs(float(jnp.linalg.norm(v)) - 1.0) > 1e-8:
            raise ValueError(f"{name} must be a unit vector, |{name}| = {float(jnp.linalg.norm(v)):.6g}")
    N = len(hidden) + 1
    k = jnp.asarray(sigma0, dtype=float) ** (1.0 / N)
    es = [jnp.arange(1.0, h + 1.0) / jnp.linalg.norm(jnp.arange(1.0, h + 1.0)) for h in hidden]
    return ((k * jnp.outer(es[0], b0),) + tuple(k * jnp.outer(es[j], es[j - 1]) for j in range(1, N - 1))
            + (k * jnp.outer(a0, es[-1]),))


def _check_weights(weights, problem=None):
    if not isinstance(weights, (tuple, list)) or len(weights) < 1:
        raise TypeError("weights must be a tuple (W1, ..., WN) of matrices")
    for j, W in enumerate(weights):
        if jnp.ndim(W) != 2:
            raise ValueError(f"weights[{j}] must be a matrix, got shape {jnp.shape(W)}")
    for j in range(len(weights) - 1):
        if jnp.shape(weights[j + 1])[1] != jnp.shape(weights[j])[0]:
            raise ValueError(f"weights[{j + 1}] shape {jnp.shape(weights[j + 1])} does not chain with weights[{j}] {jnp.shape(weights[j])}")
    if problem is not None:
        n_out, n_in = problem.sigma_yx.shape
        if jnp.shape(weights[0])[1] != n_in or jnp.shape(weights[-1])[0] != n_out:
            raise ValueError(f"weights map {jnp.shape(weights[0])[1]} -> {jnp.shape(weights[-1])[0]}, problem is {n_in} -> {n_out}")
    for j, W in enumerate(weights):
        if _is_concrete(W) and not bool(jnp.all(jnp.isfinite(W))):
            raise ValueError(f"weights[{j}] contains NaN or inf")


def product(weights: Weights) -> Float[Array, "n_out n_in"]:
    """End-to-end matrix W = WN ... W1."""
    out = weights[0]
    for W in weights[1:]:
        out = W @ out
    return out


def loss(weights: Weights, problem: Problem) -> Float[Array, ""]:
    """Population loss L = 1/2 ||Sigma_yx - WN..W1||_F^2 (whitened inputs, constant dropped)."""
    E = problem.sigma_yx - product(weights)
    return 0.5 * jnp.sum(E**2)


def _partial_products(weights):
    """left[j] = WN..W_{j+1} (identity for j = N-1), right[j] = W_{j-1}..W1 (identity for j = 0)."""
    N = len(weights)
    right = [jnp.eye(weights[0].shape[1], dtype=weights[0].dtype)]
    for j in range(1, N):
        right.append(weights[j - 1] @ right[-1])
    left = [None] * N
    left[N - 1] = jnp.eye(weights[-1].shape[0], dtype=weights[0].dtype)
    for j in range(N - 2, -1, -1):
        left[j] = left[j + 1] @ weights[j + 1]
    return left, right


def vector_field(t, weights: Weights, problem: Problem) -> Weights:
    """Gradient flow tau dWj/dt = (WN..W_{j+1})^T E (W_{j-1}..W1)^T, E = Sigma_yx - W (Saxe et al. 2014; any depth)."""
    left, right = _partial_products(weights)
    E = problem.sigma_yx - left[0] @ weights[0]
    return tuple(left[j].T @ E @ right[j].T / problem.tau for j in range(len(weights)))


def gd_step(problem: Problem, lr) -> Callable:
    """One simultaneous GD step Wj <- Wj - lr * dL/dWj = Wj + lr * (WN..W_{j+1})^T E (W_{j-1}..W1)^T (tau not used)."""
    _check_finite_positive("lr", lr)

    def step(weights, k):
        left, right = _partial_products(weights)
        E = problem.sigma_yx - left[0] @ weights[0]
        return tuple(weights[j] + lr * left[j].T @ E @ right[j].T for j in range(len(weights)))

    return step


def mode_strengths(weights: Weights, problem: Problem) -> Float[Array, " r"]:
    """u_alpha = [U^T WN..W1 V]_{alpha alpha}: strength of the product in each target mode (Saxe et al. 2014)."""
    return jnp.diagonal(problem.U.T @ product(weights) @ problem.V)


def imbalance(weights: Weights) -> tuple:
    """Conserved quantities C_j = Wj Wj^T - W_{j+1}^T W_{j+1}, j = 1..N-1 (Du et al. 2018); a tuple of h_j x h_j."""
    return tuple(weights[j] @ weights[j].T - weights[j + 1].T @ weights[j + 1] for j in range(len(weights) - 1))


def simulate_flow(
    problem: Problem,
    weights0: Weights,
    ts,
    *,
    observables: Callable | None = None,
    rtol: float = 1e-10,
    atol: float = 1e-12,
    max_steps: int = 200_000,
) -> FlowResult:
    """Integrate the layer-wise gradient flow (diffrax Tsit5) from weights0, saving observables(weights) at ts."""
    if not isinstance(weights0, (tuple, list)):
        raise TypeError("weights0 must be a tuple (W1, ..., WN) of matrices")
    weights0 = tuple(jnp.asarray(W, dtype=float) for W in weights0)
    _check_weights(weights0, problem)
    return gradient_flow(
        vector_field, weights0, ts, args=problem, observables=observables, rtol=rtol, atol=atol, max_steps=max_steps
    )


def simulate_gd(
    problem: Problem,
    weights0: Weights,
    lr,
    num_steps: int,
    *,
    save_every: int = 1,
    observables: Callable | None = None,
    blowup: float = 1e8,
) -> IterateResult:
    """Run num_steps of simultaneous GD with step lr (lax.scan), saving observables every save_every steps."""
    if not isinstance(weights0, (tuple, list)):
        raise TypeError("weights0 must be a tuple (W1, ..., WN) of matrices")
    weights0 = tuple(jnp.asarray(W, dtype=float) for W in weights0)
    _check_weights(weights0, problem)
    return iterate(gd_step(problem, lr), weights0, num_steps, save_every=save_every, observables=observables, blowup=blowup)
