"""Linear BYOL / SimSiam / DirectPred dynamics (Tian, Chen & Ganguli 2021): matrix flow and eigenmode flow.

Online W (n2 x n1), predictor Wp (n2 x n2), EMA target Wa (n2 x n1); X = E[x x^T], Xp = E[Var(x_i | x)] (augmentation).
Loss J = 1/2 E||P W x1 - SG(T x2)||^2 with P the predictor and T the target (Wa, or W when `ema=False`):
  W'  = P^T (-P W (X + Xp) + T X) - eta W      [+ (P W X - W (X + Xp)) without stop-gradient, T = W]
  Wp' = alpha_p (-P W (X + Xp) + T X) W^T - eta Wp   (symmetrised when `symmetric=True`)
  Wa' = beta (W - Wa),   F' = rho (W X W^T - F)   (running estimate of F for DirectPred)
Predictor P (index into PREDICTORS): "trained" (= Wp), "identity" (no predictor, P = I), "directpred" (P = U diag(sqrt(s)/max sqrt(s) + eps) U^T
from F = U diag(s) U^T, Tian et al. 2021), "directpred_scaled" (P = sqrt(alpha_p) F^{1/2}, the balanced scale of the
linear L2 model). The eigenmode flow (`eigenmode_vector_field`) is the same model for an aligned start with
X = I, Xp = sigma2 I: p' = alpha_p w (a - k p w) - eta p, w' = p (a - k p w) - eta w, a' = beta (w - a), k = 1 + sigma2.
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

from ._checks import check_psd_matrix
from ._divergence import check_finite_input
from .flow import FlowResult, gradient_flow

__all__ = [
    "BYOLState",
    "BYOLModel",
    "make_model",
    "isotropic_model",
    "aligned_init",
    "random_init",
    "predictor_matrix",
    "vector_field",
    "mode_coordinates",
    "alignment_error",
    "balance_matrix",
    "simulate",
    "eigenmode_vector_field",
    "simulate_eigenmodes",
    "PREDICTORS",
]

PREDICTORS = ("trained", "identity", "directpred", "directpred_scaled")


class BYOLState(NamedTuple):
    """Parameters of the linear BYOL model: W (n2, n1), Wp (n2, n2), Wa (n2, n1), F (n2, n2) running estimate of W X W^T."""

    W: Float[Array, "n2 n1"]
    Wp: Float[Array, "n2 n2"]
    Wa: Float[Array, "n2 n1"]
    F: Float[Array, "n2 n2"]


def _is_concrete(x):
    return not isinstance(x, jax.core.Tracer)


def _check_scalar(name, x, positive=False, nonneg=False):
    if not _is_concrete(x):
        return
    try:
        a = np.asarray(x, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {type(x).__name__}") from None
    if a.ndim != 0:
        raise ValueError(f"{name} must be a scalar, got shape {a.shape}")
    if not np.isfinite(a):
        raise ValueError(f"{name} must be finite, got {x!r}")
    if positive and a <= 0:
        raise ValueError(f"{name} must be positive, got {x!r}")
    if nonneg and a < 0:
        raise ValueError(f"{name} must be non-negative, got {x!r}")


class BYOLModel(eqx.Module):
    """Linear non-contrastive SSL problem (Tian et al. 2021): covariances X, Xp (n1, n1) and hyper-parameters.

    alpha_p predictor lr ratio (> 0), eta weight decay (>= 0), beta EMA rate (> 0), eps DirectPred offset, rho rate of
    the running estimate of F. The variant switches are numbers so that one compiled flow covers all variants (vmap):
    predictor = index into PREDICTORS, stop_grad / ema / symmetric / running_F in {0., 1.}. Build it with `make_model`.
    """

    X: Float[Array, "n1 n1"]
    Xp: Float[Array, "n1 n1"]
    alpha_p: Float[Array, ""]
    eta: Float[Array, ""]
    beta: Float[Array, ""]
    eps: Float[Array, ""]
    rho: Float[Array, ""]
    predictor: Array
    stop_grad: Array
    ema: Array
    symmetric: Array
    running_F: Array

    def __check_init__(self):
        check_psd_matrix("X", self.X)
        check_psd_matrix("Xp", self.Xp, np.shape(self.X)[0])
        _check_scalar("alpha_p", self.alpha_p, positive=True)
        _check_scalar("eta", self.eta, nonneg=True)
        _check_scalar("beta", self.beta, positive=True)
        _check_scalar("eps", self.eps, nonneg=True)
        _check_scalar("rho", self.rho, positive=True)
        for name in ("stop_grad", "ema", "symmetric", "running_F"):
            x = getattr(self, name)
            if _is_concrete(x) and float(x) not in (0.0, 1.0):
                raise ValueError(f"{name} must be 0 or 1 (False/True), got {x!r}")
        if _is_concrete(self.predictor) and int(self.predictor) not in range(len(PREDICTORS)):
            raise ValueError(f"predictor index must be in 0..{len(PREDICTORS) - 1}, got {self.predictor!r}")
        if _is_concrete(self.stop_grad) and _is_concrete(self.ema) and float(self.stop_grad) == 0 and float(self.ema) == 1:
            raise ValueError("stop_grad=False needs ema=False (the gradient flows into the target branch T = W)")

    @property
    def n1(self) -> int:
        return int(np.shape(self.X)[0])

    def loss(self, state: BYOLState):
        """J = 1/2 E||P W x1 - T x2||^2 = 1/2 tr(P W C W^T P^T) - tr(T X W^T P^T) + 1/2 tr(T C T^T), C = X + Xp."""
        P = predictor_matrix(self, state)
        T = self.ema * state.Wa + (1.0 - self.ema) * state.W
        C = self.X + self.Xp
        PW = P @ state.W
        return 0.5 * jnp.trace(PW @ C @ PW.T) - jnp.trace(T @ self.X @ PW.T) + 0.5 * jnp.trace(T @ C @ T.T)


def make_model(X, Xp, alpha_p, eta, beta, *, predictor="trained", stop_grad=True, ema=True, symmetric=False,
               eps=0.0, rho=1.0, running_F=True) -> BYOLModel:
    """BYOLModel from covariances X, Xp (n1, n1), rates and switches; predictor is a name in PREDICTORS or its index
    (may be traced), the switches are bools or traced 0/1 numbers (ema=False: target = W, SimSiam)."""
    if isinstance(predictor, str):
        if predictor not in PREDICTORS:
            raise ValueError(f"predictor must be one of {PREDICTORS}, got {predictor!r}")
        predictor = PREDICTORS.index(predictor)
    to = lambda x: jnp.asarray(x, dtype=float)  # noqa: E731
    return BYOLModel(X=to(X), Xp=to(Xp), alpha_p=to(alpha_p), eta=to(eta), beta=to(beta), eps=to(eps), rho=to(rho),
                     predictor=jnp.asarray(predictor), stop_grad=to(stop_grad), ema=to(ema), symmetric=to(symmetric),
                     running_F=to(running_F))


def isotropic_model(n1, sigma2, alpha_p, eta, beta, **kwargs) -> BYOLModel:
    """The paper's isotropic setting X = I, Xp = sigma2 I (n1 x n1); other keywords go to `make_model`."""
    if not isinstance(n1, (int, np.integer)) or isinstance(n1, bool) or n1 < 1:
        raise ValueError(f"n1 must be a positive int, got {n1!r}")
    _check_scalar("sigma2", sigma2, nonneg=True)
    eye = jnp.eye(int(n1))
    return make_model(eye, jnp.asarray(sigma2, dtype=float) * eye, alpha_p, eta, beta, **kwargs)


def _orthonormal(key, n, m):
    q, r = jnp.linalg.qr(jax.random.normal(key, (n, m)))
    return q * jnp.sign(jnp.diagonal(r))[None, :]


def aligned_init(key, n1, p0, w0, a0):
    """Aligned start W = U diag(w0) V^T, Wp = U diag(p0) U^T, Wa = U diag(a0) V^T, F = W W^T with random orthogonal
    U (n2, n2) and orthonormal V (n1, n2); n2 = len(p0). Returns (BYOLState, U, V)."""
    p0, w0, a0 = (jnp.atleast_1d(jnp.asarray(x, dtype=float)) for x in (p0, w0, a0))
    if p0.ndim != 1 or p0.shape != w0.shape or p0.shape != a0.shape:
        raise ValueError(f"p0, w0, a0 must be 1-D of equal length, got {p0.shape}, {w0.shape}, {a0.shape}")
    n2 = p0.shape[0]
    if not isinstance(n1, (int, np.integer)) or n1 < n2:
        raise ValueError(f"n1 must be an int >= n2 = {n2}, got {n1!r}")
    for name, x in (("p0", p0), ("w0", w0), ("a0", a0)):
        check_finite_input(name, x)
    ku, kv = jax.random.split(key)
    U = _orthonormal(ku, n2, n2)
    V = _orthonormal(kv, int(n1), n2)
    W = U @ jnp.diag(w0) @ V.T
    state = BYOLState(W=W, Wp=U @ jnp.diag(p0) @ U.T, Wa=U @ jnp.diag(a0) @ V.T, F=W @ W.T)
    return state, U, V


def random_init(key, n1, n2, scale_w=1.0, scale_p=1.0, symmetric_p=True):
    """Gaussian start: W ~ scale_w N(0, 1/n1) (n2, n1), Wa = W, Wp ~ scale_p N(0, 1/n2) (symmetrised if asked), F = W W^T."""
    for n, name in ((n1, "n1"), (n2, "n2")):
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"{name} must be a positive int, got {n!r}")
    _check_scalar("scale_w", scale_w, positive=True)
    _check_scalar("scale_p", scale_p, nonneg=True)
    k1, k2 = jax.random.split(key)
    W = scale_w * jax.random.normal(k1, (n2, n1)) / jnp.sqrt(n1)
    Wp = scale_p * jax.random.normal(k2, (n2, n2)) / jnp.sqrt(n2)
    if symmetric_p:
        Wp = 0.5 * (Wp + Wp.T)
    return BYOLState(W=W, Wp=Wp, Wa=W, F=W @ W.T)


def _psd_sqrt_parts(F):
    s, U = jnp.linalg.eigh(0.5 * (F + F.T))
    return jnp.sqrt(jnp.maximum(s, 0.0)), U


def predictor_matrix(model: BYOLModel, state: BYOLState):
    """The predictor P of the forward pass: Wp, I, or DirectPred's U diag(p_j) U^T from F (or W X W^T if running_F=0)."""
    n2 = state.W.shape[0]
    F = model.running_F * state.F + (1.0 - model.running_F) * (state.W @ model.X @ state.W.T)
    r, U = _psd_sqrt_parts(F)
    p_dp = r / jnp.maximum(jnp.max(r), 1e-300) + model.eps
    p_sc = jnp.sqrt(model.alpha_p) * r
    choices = [state.Wp, jnp.eye(n2, dtype=state.W.dtype), (U * p_dp[None, :]) @ U.T, (U * p_sc[None, :]) @ U.T]
    return jnp.select([model.predictor == i for i in range(len(PREDICTORS))], choices, state.Wp)


def vector_field(t, state: BYOLState, model: BYOLModel) -> BYOLState:
    """Gradient-flow vector field of the linear BYOL model (module doc); `model` is the diffrax `args`."""
    W, Wp, Wa, F = state
    P = predictor_matrix(model, state)
    T = model.ema * Wa + (1.0 - model.ema) * W
    C = model.X + model.Xp
    R = -P @ W @ C + T @ model.X
    dW = P.T @ R - model.eta * W + (1.0 - model.stop_grad) * (P @ W @ model.X - W @ C)
    trained = (model.predictor == 0).astype(W.dtype)
    dWp = model.alpha_p * R @ W.T - model.eta * Wp
    dWp = trained * (model.symmetric * 0.5 * (dWp + dWp.T) + (1.0 - model.symmetric) * dWp)
    dWa = model.ema * model.beta * (W - Wa)
    is_dp = (model.predictor >= 2).astype(W.dtype) * model.running_F
    dF = is_dp * model.rho * (W @ model.X @ W.T - F)
    return BYOLState(dW, dWp, dWa, dF)


def mode_coordinates(state: BYOLState, U, V):
    """Mode strengths in the basis (U, V): p_j = u_j^T Wp u_j, w_j = u_j^T W v_j, a_j = u_j^T Wa v_j (each (n2,))."""
    p = jnp.einsum("ij,ik,kj->j", U, state.Wp, U)
    w = jnp.einsum("ij,ik,kj->j", U, state.W, V)
    a = jnp.einsum("ij,ik,kj->j", U, state.Wa, V)
    return p, w, a


def alignment_error(Wp, F):
    """||[Wp, F]||_F / (||Wp||_F ||F||_F): zero iff the symmetric Wp and F share eigenvectors (Tian et al. 2021)."""
    comm = Wp @ F - F @ Wp
    return jnp.linalg.norm(comm) / (jnp.linalg.norm(Wp) * jnp.linalg.norm(F) + 1e-300)


def balance_matrix(state: BYOLState, alpha_p):
    """alpha_p W W^T - Wp^T Wp, which decays as exp(-2 eta t) under the trained-predictor flow (Tian et al. 2021)."""
    return alpha_p * state.W @ state.W.T - state.Wp.T @ state.Wp


def _check_ts(ts):
    if _is_concrete(ts):
        arr = np.asarray(ts, dtype=float)
        if arr.ndim != 1 or arr.size < 1 or not np.all(np.isfinite(arr)) or np.any(np.diff(arr) < 0) or arr[0] < 0:
            raise ValueError("ts must be a non-empty, non-decreasing 1-D array of non-negative times")


def simulate(model: BYOLModel, state0: BYOLState, ts, *, observables=None, rtol=1e-9, atol=1e-11,
             max_steps=200_000) -> FlowResult:
    """Integrate the matrix flow from `state0` (diffrax Tsit5 via toymodels.flow), saving `observables(state)` at ts."""
    if not isinstance(model, BYOLModel):
        raise TypeError(f"model must be a BYOLModel, got {type(model).__name__}")
    if not isinstance(state0, BYOLState):
        raise TypeError(f"state0 must be a BYOLState, got {type(state0).__name__}")
    n2, n1 = np.shape(state0.W)
    if n1 != model.n1:
        raise ValueError(f"state0.W has {n1} columns but X is {model.n1} x {model.n1}")
    for name, x, shape in (("Wp", state0.Wp, (n2, n2)), ("Wa", state0.Wa, (n2, n1)), ("F", state0.F, (n2, n2))):
        if np.shape(x) != shape:
            raise ValueError(f"state0.{name} must have shape {shape}, got {np.shape(x)}")
    check_finite_input("state0", state0)
    _check_ts(ts)
    t0 = 0.0 if _is_concrete(ts) else None
    return gradient_flow(vector_field, state0, ts, args=model, observables=observables, rtol=rtol, atol=atol,
                         max_steps=max_steps, t0=t0)


def eigenmode_vector_field(t, y, args):
    """Per-mode ODEs y = (p, w, a) (arrays (m,)), args = (alpha_p, eta, beta, sigma2):
    p' = alpha_p w (a - k p w) - eta p, w' = p (a - k p w) - eta w, a' = beta (w - a), k = 1 + sigma2."""
    p, w, a = y
    alpha_p, eta, beta, sigma2 = args
    err = a - (1.0 + sigma2) * p * w
    return (alpha_p * w * err - eta * p, p * err - eta * w, beta * (w - a))


def simulate_eigenmodes(p0, w0, a0, ts, *, alpha_p, eta, beta, sigma2, rtol=1e-9, atol=1e-11) -> FlowResult:
    """Integrate the decoupled eigenmode ODEs (`eigenmode_vector_field`) from (p0, w0, a0) (each (m,)), saving at ts."""
    for name, x, kw in (("alpha_p", alpha_p, dict(positive=True)), ("eta", eta, dict(nonneg=True)),
                        ("beta", beta, dict(positive=True)), ("sigma2", sigma2, dict(nonneg=True))):
        _check_scalar(name, x, **kw)
    y0 = tuple(jnp.atleast_1d(jnp.asarray(x, dtype=float)) for x in (p0, w0, a0))
    if not (y0[0].shape == y0[1].shape == y0[2].shape) or y0[0].ndim != 1:
        raise ValueError("p0, w0, a0 must be 1-D arrays of equal length")
    check_finite_input("(p0, w0, a0)", y0)
    _check_ts(ts)
    args = tuple(jnp.asarray(x, dtype=float) for x in (alpha_p, eta, beta, sigma2))
    return gradient_flow(eigenmode_vector_field, y0, ts, args=args, rtol=rtol, atol=atol,
                         t0=0.0 if _is_concrete(ts) else None)
