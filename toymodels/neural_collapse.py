"""Unconstrained features model (UFM) of neural collapse: losses, initialisation, GD training and NC1-NC4 metrics.

Features H [d, n] are free variables, classifier W [K, d], bias b [K], labels y [n] in {0..K-1}
(Mixon et al. 2020; Zhou et al. 2022; Tirer & Bruna 2022; Zhu et al. 2021). Params are a dict {"W", "H", "b"}
("b" optional = no bias). Per-sample weights (0/1 masks) give class-imbalanced problems with a fixed array shape.
NC metrics follow Papyan, Han & Donoho 2020. Everything is jit/vmap-safe in the arrays and the regularisation weights.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from .iterate import IterateResult, gd_step, iterate

__all__ = [
    "class_labels",
    "one_hot_targets",
    "init_params",
    "mse_loss",
    "ce_loss",
    "train_gd",
    "nc_metrics",
    "class_means",
    "grad_norm",
    "hessian_eigvals",
    "extended_mse_loss",
    "init_extended_params",
    "least_squares_classifier",
    "central_path_loss",
    "within_class_cov",
    "snr_eigvals",
    "renormalized_features",
    "renormalized_central_path_field",
]


def _is_concrete(x) -> bool:
    try:
        np.asarray(x, dtype=float)
        return True
    except Exception:
        return False


def _check_nonneg(name, v, positive=False):
    if _is_concrete(v):
        arr = np.asarray(v, dtype=float)
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{name} must be finite, got {v!r}")
        if np.any(arr < 0) or (positive and np.any(arr == 0)):
            raise ValueError(f"{name} must be {'> 0' if positive else '>= 0'}, got {v!r}")


def class_labels(class_sizes) -> np.ndarray:
    """Labels [n] = (0,..,0, 1,..,1, ...) with class_sizes[k] copies of k (n = sum class_sizes); numpy int array."""
    sizes = np.asarray(class_sizes)
    if sizes.ndim != 1 or sizes.size < 2 or sizes.dtype.kind not in "iu" or np.any(sizes < 1):
        raise ValueError(f"class_sizes must be a 1-D list of >= 2 positive ints, got {class_sizes!r}")
    return np.repeat(np.arange(sizes.size), sizes)


def one_hot_targets(labels, K: int):
    """Y [K, n] with Y[k, i] = 1[labels[i] = k]."""
    if isinstance(K, bool) or not isinstance(K, (int, np.integer)) or K < 2:
        raise ValueError(f"K must be an int >= 2, got {K!r}")
    return jax.nn.one_hot(jnp.asarray(labels), K, dtype=float).T


def init_params(key, K: int, d: int, n: int, scale=1.0, bias: bool = True) -> dict:
    """Gaussian init: W_ij ~ N(0, scale^2/d), H_ij ~ N(0, scale^2), b = 0 (b omitted if bias=False)."""
    for name, v in (("K", K), ("d", d), ("n", n)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    _check_nonneg("scale", scale, positive=True)
    kW, kH = jax.random.split(key)
    p = {"W": scale * jax.random.normal(kW, (K, d)) / jnp.sqrt(d), "H": scale * jax.random.normal(kH, (d, n))}
    if bias:
        p["b"] = jnp.zeros(K)
    return p


def _check_params(params, n=None):
    if not isinstance(params, dict) or "W" not in params or "H" not in params:
        raise TypeError("params must be a dict with keys 'W', 'H' (and optionally 'b')")
    W, H = params["W"], params["H"]
    if W.ndim != 2 or H.ndim != 2 or W.shape[1] != H.shape[0]:
        raise ValueError(f"params: W must be [K, d] and H [d, n], got W{W.shape}, H{H.shape}")
    if "b" in params and params["b"].shape != (W.shape[0],):
        raise ValueError(f"params: b must have shape ({W.shape[0]},), got {params['b'].shape}")
    if n is not None and H.shape[1] != n:
        raise ValueError(f"params: H has {H.shape[1]} columns but there are {n} samples")


def _weights(weights, n):
    if weights is None:
        return jnp.ones(n)
    w = jnp.asarray(weights, dtype=float)
    if w.shape != (n,):
        raise ValueError(f"weights must have shape ({n},), got {w.shape}")
    return w


def _logits(params):
    Z = params["W"] @ params["H"]
    return Z + params["b"][:, None] if "b" in params else Z


def _reg(params, w, lam_W, lam_H, lam_b):
    r = 0.5 * lam_W * jnp.sum(params["W"] ** 2) + 0.5 * lam_H * jnp.sum(w * jnp.sum(params["H"] ** 2, axis=0))
    if "b" in params:
        r = r + 0.5 * lam_b * jnp.sum(params["b"] ** 2)
    return r


def mse_loss(params: dict, Y, lam_W, lam_H, lam_b=0.0, weights=None):
    """MSE UFM: 1/(2n) sum_i w_i ||W h_i + b - y_i||^2 + lam_W/2 ||W||^2 + lam_H/2 sum_i w_i ||h_i||^2 + lam_b/2 ||b||^2,
    n = sum_i w_i (Zhou et al. 2022). Y: [K, n] targets; weights: [n] (default all ones)."""
    _check_params(params, Y.shape[1])
    if Y.shape[0] != params["W"].shape[0]:
        raise ValueError(f"Y must be [K={params['W'].shape[0]}, n], got {Y.shape}")
    for nm, v in (("lam_W", lam_W), ("lam_H", lam_H), ("lam_b", lam_b)):
        _check_nonneg(nm, v)
    w = _weights(weights, Y.shape[1])
    R = _logits(params) - Y
    return 0.5 * jnp.sum(w * jnp.sum(R ** 2, axis=0)) / jnp.sum(w) + _reg(params, w, lam_W, lam_H, lam_b)


def ce_loss(params: dict, labels, lam_W, lam_H, lam_b=0.0, weights=None):
    """Cross-entropy UFM: 1/n sum_i w_i CE(W h_i + b, y_i) + the same ridge penalties (Zhu et al. 2021); labels [n]."""
    labels = jnp.asarray(labels)
    _check_params(params, labels.shape[0])
    for nm, v in (("lam_W", lam_W), ("lam_H", lam_H), ("lam_b", lam_b)):
        _check_nonneg(nm, v)
    w = _weights(weights, labels.shape[0])
    Z = _logits(params)
    logp = jax.nn.log_softmax(Z, axis=0)
    nll = -jnp.take_along_axis(logp, labels[None, :], axis=0)[0]
    return jnp.sum(w * nll) / jnp.sum(w) + _reg(params, w, lam_W, lam_H, lam_b)


def extended_mse_loss(params: dict, Y, lam_W, lam_W1, lam_H, relu=True):
    """Extended UFM (Tirer & Bruna 2022): 1/(2n)||W sigma(W1 H) - Y||^2 + lam_W/2||W||^2 + lam_W1/2||W1||^2
    + lam_H/2||H||^2, sigma = ReLU if relu else identity (relu may be a traced bool); params {"W" [K,d], "W1" [d,d],
    "H" [d,n]} (see init_extended_params)."""
    if not isinstance(params, dict) or "W1" not in params:
        raise TypeError("params must be a dict with keys 'W', 'W1', 'H'")
    _check_params({"W": params["W"], "H": params["H"]}, Y.shape[1])
    if params["W1"].shape != (params["H"].shape[0], params["H"].shape[0]):
        raise ValueError(f"params: W1 must be [d, d] with d = {params['H'].shape[0]}, got {params['W1'].shape}")
    for nm, v in (("lam_W", lam_W), ("lam_W1", lam_W1), ("lam_H", lam_H)):
        _check_nonneg(nm, v)
    X = params["W1"] @ params["H"]
    X = jnp.where(relu, jax.nn.relu(X), X)
    R = params["W"] @ X - Y
    return (0.5 * jnp.sum(R ** 2) / Y.shape[1] + 0.5 * lam_W * jnp.sum(params["W"] ** 2)
            + 0.5 * lam_W1 * jnp.sum(params["W1"] ** 2) + 0.5 * lam_H * jnp.sum(params["H"] ** 2))


def init_extended_params(key, K: int, d: int, n: int, scale=1.0) -> dict:
    """Gaussian init for the extended UFM: W ~ N(0, scale^2/d), W1 ~ N(0, scale^2/d), H ~ N(0, scale^2)."""
    k1, k2 = jax.random.split(key)
    p = init_params(k1, K, d, n, scale=scale, bias=False)
    p["W1"] = scale * jax.random.normal(k2, (d, d)) / jnp.sqrt(d)
    return p


def train_gd(loss: Callable[[dict], jax.Array], params0: dict, lr, num_steps: int, *, save_every: int = 1,
             observables: Callable | None = None) -> IterateResult:
    """Full-batch gradient descent p <- p - lr grad loss(p), via toymodels.iterate (exact map, divergence reported)."""
    _check_nonneg("lr", lr, positive=True)
    return iterate(gd_step(loss, lr), params0, num_steps, save_every=save_every, observables=observables)


def class_means(H, labels, K: int, weights=None):
    """(M [d, K] class means, mu_G [d] global mean, counts [K]) with optional per-sample weights."""
    w = _weights(weights, H.shape[1])
    P = jax.nn.one_hot(jnp.asarray(labels), K, dtype=float) * w[:, None]  # [n, K]
    counts = P.sum(0)
    M = (H @ P) / jnp.where(counts > 0, counts, 1.0)
    mu_G = (H @ w) / jnp.sum(w)
    return M, mu_G, counts


def _max_offdiag_cos_dev(X, K):
    """max_{k != k'} |cos(x_k, x_k') + 1/(K-1)| for the columns of X [d, K]."""
    nrm = jnp.linalg.norm(X, axis=0)
    C = (X.T @ X) / jnp.maximum(nrm[:, None] * nrm[None, :], 1e-300)
    dev = jnp.abs(C + 1.0 / (K - 1)) * (1.0 - jnp.eye(K))
    return jnp.max(dev)


def nc_metrics(H, W, labels, b=None, weights=None) -> dict:
    """Papyan, Han & Donoho 2020 NC metrics. H [d, n], W [K, d], labels [n] (ints), b [K] optional.

    NC1 = tr(Sigma_W Sigma_B^+)/K; NC2: equinorm (std/mean of ||mu_k - mu_G|| and ||w_k||), equiangle
    (max |cos + 1/(K-1)| of centred means and of w_k); NC3 = ||W/||W|| - Mbar^T/||Mbar|| ||_F^2; NC4 = fraction of
    samples where argmax(W h + b) != nearest class mean. Also the within-class scatter tr(Sigma_W).
    """
    if H.ndim != 2 or W.ndim != 2 or W.shape[1] != H.shape[0]:
        raise ValueError(f"nc_metrics: W must be [K, d] and H [d, n], got W{W.shape}, H{H.shape}")
    labels = jnp.asarray(labels)
    if labels.shape != (H.shape[1],):
        raise ValueError(f"nc_metrics: labels must have shape ({H.shape[1]},), got {labels.shape}")
    K = W.shape[0]
    w = _weights(weights, H.shape[1])
    n = jnp.sum(w)
    M, mu_G, _ = class_means(H, labels, K, w)
    E = H - M[:, labels]
    Sigma_W = (E * w[None, :]) @ E.T / n
    Mbar = M - mu_G[:, None]
    Sigma_B = Mbar @ Mbar.T / K
    nc1 = jnp.trace(Sigma_W @ jnp.linalg.pinv(Sigma_B, hermitian=True)) / K
    mn = jnp.linalg.norm(Mbar, axis=0)
    wn = jnp.linalg.norm(W, axis=1)
    nc3 = jnp.sum((W / jnp.linalg.norm(W) - Mbar.T / jnp.linalg.norm(Mbar)) ** 2)
    logits = W @ H + (b[:, None] if b is not None else 0.0)
    pred = jnp.argmax(logits, axis=0)
    dist = jnp.sum((H[:, None, :] - M[:, :, None]) ** 2, axis=0)  # [K, n]
    ncc = jnp.argmin(dist, axis=0)
    nc4 = jnp.sum(w * (pred != ncc)) / n
    return {
        "nc1": nc1,
        "equinorm_H": jnp.std(mn) / jnp.mean(mn),
        "equinorm_W": jnp.std(wn) / jnp.mean(wn),
        "equiangle_H": _max_offdiag_cos_dev(Mbar, K),
        "equiangle_W": _max_offdiag_cos_dev(W.T, K),
        "nc3": nc3,
        "nc4": nc4,
        "within_scatter": jnp.trace(Sigma_W),
    }


def grad_norm(loss: Callable[[dict], jax.Array], params: dict):
    """Euclidean norm of grad loss(params) over all leaves."""
    g, _ = ravel_pytree(jax.grad(loss)(params))
    return jnp.linalg.norm(g)


def hessian_eigvals(loss: Callable[[dict], jax.Array], params: dict):
    """All eigenvalues (ascending) of the Hessian of loss at params, over the flattened parameters (small models)."""
    flat, unravel = ravel_pytree(params)
    Hs = jax.hessian(lambda x: loss(unravel(x)))(flat)
    return jnp.linalg.eigvalsh(0.5 * (Hs + Hs.T))


# ------------------------------------------------------------------------------------------------------------------
# Central path (Han, Papyan & Donoho 2022): the classifier at the least-squares optimum of the current features
def least_squares_classifier(H, Y, lam_W=0.0, lam_b=0.0) -> dict:
    """{"W" [K, d], "b" [K]} = argmin_{W,b} 1/(2n)||W H + b 1^T - Y||^2 + lam_W/2||W||^2 + lam_b/2||b||^2, solved by
    lstsq on the stacked (ridge-augmented) design [Ht^T; sqrt(n Lambda)] (Han, Papyan & Donoho 2022). H [d, n], Y [K, n]."""
    if H.ndim != 2 or Y.ndim != 2 or H.shape[1] != Y.shape[1]:
        raise ValueError(f"H must be [d, n] and Y [K, n], got H{H.shape}, Y{Y.shape}")
    _check_nonneg("lam_W", lam_W)
    _check_nonneg("lam_b", lam_b)
    d, n = H.shape
    X = jnp.concatenate([H.T, jnp.ones((n, 1))], axis=1)  # [n, d+1]
    ridge = jnp.sqrt(n * jnp.concatenate([jnp.full(d, lam_W, dtype=float), jnp.array([lam_b], dtype=float)]))
    Xa = jnp.concatenate([X, jnp.diag(ridge)], axis=0)
    Ya = jnp.concatenate([Y.T, jnp.zeros((d + 1, Y.shape[0]))], axis=0)
    Wt = jnp.linalg.lstsq(Xa, Ya)[0].T
    return {"W": Wt[:, :d], "b": Wt[:, d]}


def central_path_loss(H, Y, lam_W=0.0, lam_b=0.0):
    """L*(H) = min_{W,b} MSE UFM loss (without the H ridge): the loss on the central path (Han, Papyan & Donoho 2022)."""
    p = least_squares_classifier(H, Y, lam_W, lam_b)
    return mse_loss({"W": p["W"], "H": H, "b": p["b"]}, Y, lam_W, 0.0, lam_b)


def _within_projector(labels, K):
    P = jax.nn.one_hot(jnp.asarray(labels), K, dtype=float)  # [n, K]
    return jnp.eye(P.shape[0]) - P @ jnp.diag(1.0 / P.sum(0)) @ P.T


def within_class_cov(H, labels, K: int):
    """Sigma_W = E E^T / n, E = H minus its class means. H [d, n] -> [d, d]."""
    E = H @ _within_projector(labels, K)
    return E @ E.T / H.shape[1]


def snr_eigvals(H, labels, K: int):
    """The K-1 largest eigenvalues (descending) of Sigma_W^{-1} Sigma_B, Sigma_B = Mbar Mbar^T / K (balanced classes):
    squared singular values of the SNR matrix Sigma_W^{-1/2} Mbar / sqrt(K). H [d, n] -> [K-1]."""
    M, mu_G, _ = class_means(H, labels, K)
    Mbar = M - mu_G[:, None]
    ev, Q = jnp.linalg.eigh(within_class_cov(H, labels, K))
    Wh = (Q / jnp.sqrt(ev)) @ Q.T  # Sigma_W^{-1/2}
    S = Wh @ Mbar @ Mbar.T @ Wh / K
    return jnp.linalg.eigvalsh(0.5 * (S + S.T))[::-1][: K - 1]


def renormalized_features(key, K: int, N: int, d: int, mean_scale=1.0):
    """Features on the renormalised manifold Sigma_W = I: Gaussian within-class noise whitened exactly, class means
    mean_scale * N(0, 1) (d >= K-1 and n - K >= d needed for Sigma_W > 0). Returns (H [d, K N], labels [K N])."""
    if d < K - 1 or K * N - K < d:
        raise ValueError(f"need K-1 <= d <= K N - K for an invertible Sigma_W, got K={K}, N={N}, d={d}")
    _check_nonneg("mean_scale", mean_scale, positive=True)
    labels = class_labels([N] * K)
    kE, kM = jax.random.split(key)
    E = jax.random.normal(kE, (d, K * N)) @ _within_projector(labels, K)
    ev, Q = jnp.linalg.eigh(E @ E.T / (K * N))
    E = (Q / jnp.sqrt(ev)) @ Q.T @ E
    M = mean_scale * jax.random.normal(kM, (d, K))
    return E + M[:, labels], labels


def renormalized_central_path_field(labels, K: int, lam_W=0.0, lam_b=0.0):
    """Vector field (t, H, Y) -> -grad L*(H) projected onto the tangent space of {Sigma_W(H) = const}: subtract
    Lambda E with Lambda symmetric solving Lambda S + S Lambda = G_E E^T + E G_E^T, S = E E^T (continually
    renormalised gradient flow on the central path, Han, Papyan & Donoho 2022). H [d, n]; gradient by autodiff."""
    P = _within_projector(labels, K)
    grad = jax.grad(central_path_loss)

    def field(t, H, Y):
        G = -grad(H, Y, lam_W, lam_b)
        E, GE = H @ P, G @ P
        ev, Q = jnp.linalg.eigh(E @ E.T)
        R = Q.T @ (GE @ E.T + E @ GE.T) @ Q
        Lam = Q @ (R / (ev[:, None] + ev[None, :])) @ Q.T
        return G - Lam @ E

    return field
