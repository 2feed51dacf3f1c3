"""SGD as a stochastic process: Monte-Carlo ensembles of discrete SGD / RMSprop / Adam and of their SDEs.

Every simulator runs many independent paths vectorised in one `lax.scan` (paths are a batch axis) and returns
ensemble estimates with standard errors over paths. jit/vmap-safe in the step size, noise level and batch-size
*scalars* (a minibatch of Gaussian features needs a static int batch size). Never imports `derivations`.

- `quadratic_sgd_covariance`: x' = x - eta (H x + xi), xi ~ N(0, C/B), time-averaged stationary covariance.
- `quadratic_sde_covariance`: dX = -H X dt + sqrt(eta C/B) dW via `toymodels.sde.euler_maruyama`.
- `least_squares_sgd`: minibatch SGD on y = w*.x + eps, x ~ N(0, Sigma); test loss (w-w*)^T Sigma (w-w*)/2 + s^2/2.
- `sme_coupled`: SGD and its order-1 / order-2 stochastic modified equations (Li, Tai & E 2017) driven by one
  Brownian path per sample (common random numbers), SDEs by Euler-Maruyama + Richardson extrapolation.
- `adaptive_noisy_quadratic`: optax RMSprop / Adam on a noisy quadratic (Malladi et al. 2022).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax

from ._checks import check_psd_matrix
from ._divergence import check_finite_input
from .iterate import iterate, optax_step
from .sde import euler_maruyama

__all__ = [
    "psd_sqrt",
    "quadratic_sgd_covariance",
    "quadratic_sde_covariance",
    "least_squares_sgd",
    "least_squares_sgd_budget",
    "sme_coupled",
    "sme_loss",
    "adaptive_noisy_quadratic",
    "cubic_well_grad",
    "escape_renewal",
    "sgd_escape_renewal",
]


# ---------------------------------------------------------------------------------------------------------- checks
def _positive(name, v):
    if isinstance(v, jax.core.Tracer):
        return
    try:
        a = np.asarray(v, dtype=float)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a positive number, got {v!r}") from None
    if not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise ValueError(f"{name} must be positive and finite, got {v!r}")


def _count(name, v, minimum=1):
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}, got {v!r}")
    return int(v)


def psd_sqrt(M):
    """Symmetric square root M^{1/2} of a PSD matrix via eigh (negative round-off eigenvalues clipped), (d, d)."""
    w, V = jnp.linalg.eigh(M)
    return (V * jnp.sqrt(jnp.clip(w, 0.0))) @ V.T


def _mean_sem(a, axis=0):
    n = a.shape[axis]
    return jnp.mean(a, axis=axis), jnp.std(a, axis=axis, ddof=1) / jnp.sqrt(n)


# ---------------------------------------------------------------------------------------------------------- section 1
def quadratic_sgd_covariance(H, C, eta, batch_size, key, *, n_paths: int, num_steps: int, burn_in: int):
    """Stationary covariance of SGD x' = x - eta (H x + xi), xi ~ N(0, C/B), x_0 = 0: per-path time average of
    x x^T over steps burn_in+1..num_steps, then mean and SEM over `n_paths` independent paths. Returns
    {"cov": (d, d), "cov_sem": (d, d)}."""
    H, C = check_psd_matrix("H", H, strict=True), check_psd_matrix("C", C)
    if H.shape != C.shape:
        raise ValueError(f"H and C must have the same shape, got {H.shape} and {C.shape}")
    _positive("eta", eta)
    _positive("batch_size", batch_size)
    n_paths, num_steps = _count("n_paths", n_paths, 2), _count("num_steps", num_steps)
    burn_in = _count("burn_in", burn_in, 0)
    if burn_in >= num_steps:
        raise ValueError(f"burn_in ({burn_in}) must be smaller than num_steps ({num_steps})")
    d = H.shape[0]
    L = psd_sqrt(C) / jnp.sqrt(batch_size)
    x0 = jnp.zeros((n_paths, d), dtype=H.dtype)

    def step(x, k):
        z = jax.random.normal(jax.random.fold_in(key, k), (n_paths, d), dtype=x.dtype)
        return x - eta * (x @ H + z @ L)

    def burn(x, k):
        return step(x, k), None

    def accumulate(carry, k):
        x, s = carry
        x = step(x, k)
        return (x, s + x[:, :, None] * x[:, None, :]), None

    x, _ = jax.lax.scan(burn, x0, jnp.arange(burn_in))
    s0 = jnp.zeros((n_paths, d, d), dtype=H.dtype)
    (x, s), _ = jax.lax.scan(accumulate, (x, s0), jnp.arange(burn_in, num_steps))
    cov, sem = _mean_sem(s / (num_steps - burn_in))
    return {"cov": cov, "cov_sem": sem}


def quadratic_sde_covariance(H, C, eta, batch_size, key, *, dt: float, num_steps: int, n_paths: int, n_avg: int = 10):
    """Stationary covariance of the OU/SDE dX = -H X dt + sqrt(eta C/B) dW, X_0 = 0 (Euler-Maruyama, step dt):
    ensemble mean of X X^T averaged over the last `n_avg` of 2*n_avg save points of the second half, SEM the
    average of the per-save SEMs (an upper bound for correlated saves). Returns {"cov", "cov_sem"}, (d, d) each."""
    H, C = check_psd_matrix("H", H, strict=True), check_psd_matrix("C", C)
    if H.shape != C.shape:
        raise ValueError(f"H and C must have the same shape, got {H.shape} and {C.shape}")
    _positive("eta", eta)
    _positive("batch_size", batch_size)
    n_avg = _count("n_avg", n_avg)
    num_steps = _count("num_steps", num_steps)
    if num_steps % (2 * n_avg):
        raise ValueError(f"num_steps ({num_steps}) must be a multiple of 2*n_avg ({2 * n_avg})")
    d = H.shape[0]
    G = psd_sqrt(C) * jnp.sqrt(eta / batch_size)
    res = euler_maruyama(
        lambda t, x: -H @ x,
        lambda t, x: G,
        jnp.zeros(d, dtype=H.dtype),
        key,
        dt=dt,
        num_steps=num_steps,
        n_paths=n_paths,
        save_every=num_steps // (2 * n_avg),
        observables=lambda x: jnp.outer(x, x),
    )
    return {"cov": jnp.mean(res.mean[-n_avg:], axis=0), "cov_sem": jnp.mean(res.sem[-n_avg:], axis=0)}


# ---------------------------------------------------------------------------------------------------------- section 2/3
def _least_squares_inputs(Sigma, w_star, noise_std, eta):
    """Checked (Sigma, w_star) of the Gaussian least-squares SGD simulators; noise_std >= 0 and eta > 0 checked too."""
    Sigma = check_psd_matrix("Sigma", Sigma)
    d = Sigma.shape[0]
    w_star = jnp.asarray(w_star, dtype=Sigma.dtype)
    if w_star.shape != (d,):
        raise ValueError(f"w_star must have shape ({d},), got {w_star.shape}")
    check_finite_input("w_star", w_star)
    if not isinstance(noise_std, jax.core.Tracer) and not (np.isfinite(noise_std) and noise_std >= 0):
        raise ValueError(f"noise_std must be finite and >= 0, got {noise_std!r}")
    _positive("eta", eta)
    return Sigma, w_star


def least_squares_sgd(
    Sigma, w_star, noise_std, eta, batch_size: int, key, *, n_paths: int, num_steps: int, save_every: int = 1,
    w0=None, blowup: float = 1e100,
):
    """Minibatch SGD w' = w - (eta/B) sum_b x_b (x_b.w - y_b) on x ~ N(0, Sigma), y = w*.x + eps, eps ~ N(0, s^2)
    (Bordelon & Pehlevan 2022), `n_paths` independent runs from w0 (default 0). Test loss per path
    L = (w-w*)^T Sigma (w-w*)/2 + s^2/2. Returns {"loss", "loss_sem", "frac_diverged"} at the saves (n_save,),
    n_save = num_steps // save_every + 1; a path whose |w| exceeds `blowup` is frozen and counted as diverged."""
    Sigma, w_star = _least_squares_inputs(Sigma, w_star, noise_std, eta)
    d = Sigma.shape[0]
    B = _count("batch_size", batch_size)
    n_paths, num_steps, save_every = _count("n_paths", n_paths, 2), _count("num_steps", num_steps, 0), _count(
        "save_every", save_every)
    if num_steps % save_every:
        raise ValueError(f"num_steps ({num_steps}) must be a multiple of save_every ({save_every})")
    w0 = jnp.zeros(d, dtype=Sigma.dtype) if w0 is None else jnp.asarray(w0, dtype=Sigma.dtype)
    if w0.shape != (d,):
        raise ValueError(f"w0 must have shape ({d},), got {w0.shape}")
    check_finite_input("w0", w0)
    R = psd_sqrt(Sigma)
    e0 = jnp.broadcast_to(w0 - w_star, (n_paths, d))

    def obs(state):
        e, dead = state
        loss = 0.5 * jnp.einsum("pi,ij,pj->p", e, Sigma, e) + 0.5 * noise_std**2
        m, s = _mean_sem(loss)
        return {"loss": m, "loss_sem": s, "frac_diverged": jnp.mean(dead)}

    def step(state, k):
        e, dead = state
        k1, k2 = jax.random.split(jax.random.fold_in(key, k))
        X = jax.random.normal(k1, (n_paths, B, d), dtype=e.dtype) @ R  # rows x_b ~ N(0, Sigma)
        eps = noise_std * jax.random.normal(k2, (n_paths, B), dtype=e.dtype)
        resid = jnp.einsum("pbi,pi->pb", X, e) - eps  # x.w - y = x.e - eps
        new = e - eta / B * jnp.einsum("pbi,pb->pi", X, resid)
        bad = ~jnp.all(jnp.isfinite(new) & (jnp.abs(new) < blowup), axis=1)
        dead = dead | bad
        return jnp.where(dead[:, None], e, new), dead

    # iterate monitors the ensemble as a whole; per-path divergence is handled inside the step (frozen paths)
    res = iterate(step, (e0, jnp.zeros(n_paths, dtype=bool)), num_steps, save_every=save_every, observables=obs,
                  monitor=lambda s: jnp.zeros(()), blowup=np.inf)
    return res.observables


def least_squares_sgd_budget(
    Sigma, w_star, noise_std, eta, batch_size, key, *, n_paths: int, budget: int, w0=None, blowup: float = 1e100,
):
    """Minibatch SGD on Gaussian least squares at a fixed compute budget C = B t (Bordelon & Pehlevan 2022), written as
    a stream of C samples: per-example gradients x (x.w - y) are accumulated and w <- w - (eta/B) sum every B samples
    (the same law as `least_squares_sgd` with batch B for floor(C/B) steps). batch_size may be traced (vmappable).
    Returns {"loss", "loss_sem", "frac_diverged", "updates"} (scalars) after the C samples, over `n_paths` paths."""
    Sigma, w_star = _least_squares_inputs(Sigma, w_star, noise_std, eta)
    d = Sigma.shape[0]
    _positive("batch_size", batch_size)
    if not isinstance(batch_size, jax.core.Tracer) and float(batch_size) != round(float(batch_size)):
        raise ValueError(f"batch_size must be a whole number, got {batch_size!r}")
    n_paths, budget = _count("n_paths", n_paths, 2), _count("budget", budget)
    w0 = jnp.zeros(d, dtype=Sigma.dtype) if w0 is None else jnp.asarray(w0, dtype=Sigma.dtype)
    if w0.shape != (d,):
        raise ValueError(f"w0 must have shape ({d},), got {w0.shape}")
    check_finite_input("w0", w0)
    R = psd_sqrt(Sigma)
    B = jnp.round(jnp.asarray(batch_size)).astype(jnp.int32)

    def tick(carry, s):
        e, g, dead, n_up = carry
        k1, k2 = jax.random.split(jax.random.fold_in(key, s))
        x = jax.random.normal(k1, (n_paths, d), dtype=e.dtype) @ R  # x ~ N(0, Sigma), one example per path
        eps = noise_std * jax.random.normal(k2, (n_paths,), dtype=e.dtype)
        g = g + x * (jnp.einsum("pi,pi->p", x, e) - eps)[:, None]  # x (x.w - y), e = w - w*
        fire = (s + 1) % B == 0
        new = e - eta / B * g
        bad = ~jnp.all(jnp.isfinite(new) & (jnp.abs(new) < blowup), axis=1)
        dead = dead | (fire & bad)
        e = jnp.where(fire & ~dead[:, None], new, e)
        return (e, jnp.where(fire, 0.0, g), dead, n_up + fire), None

    e0 = jnp.broadcast_to(w0 - w_star, (n_paths, d))
    init = (e0, jnp.zeros_like(e0), jnp.zeros(n_paths, dtype=bool), jnp.zeros((), jnp.int32))
    (e, _, dead, n_up), _ = jax.lax.scan(tick, init, jnp.arange(budget))
    loss = 0.5 * jnp.einsum("pi,ij,pj->p", e, Sigma, e) + 0.5 * noise_std**2
    m, se = _mean_sem(loss)
    return {"loss": m, "loss_sem": se, "frac_diverged": jnp.mean(dead), "updates": n_up}


# ---------------------------------------------------------------------------------------------------------- section 4
def sme_loss(x):
    """Non-quadratic 1-D test loss of the SME experiment: f(x) = log cosh x + x^2/4 (f' = tanh x + x/2)."""
    return jnp.log(jnp.cosh(x)) + 0.25 * x**2


def _sme_grad(x):
    return jnp.tanh(x) + 0.5 * x


def _sme_grad_sq_grad(x):
    # d/dx (f'(x)^2) = 2 f' f''
    return 2.0 * _sme_grad(x) * (1.0 - jnp.tanh(x) ** 2 + 0.5)


def sme_coupled(eta, key, *, x0: float, t_max: float, n_fine: int, n_paths: int, noise_scale: float = 1.0):
    """SGD x' = x - eta (f'(x) + sqrt(Sigma(x)) xi) (f = `sme_loss`, Sigma = s^2 (1 + tanh^2 x)) and the SMEs
    dX = b(X) dt + sqrt(eta Sigma(X)) dW with b = -f' (order 1) or -f' - (eta/4)(f'^2)' (order 2; Li, Tai & E 2017),
    all driven by the same Brownian path per sample (SGD noise xi_k = (W_{(k+1)eta} - W_{k eta}) / sqrt(eta)).
    SDEs: Euler-Maruyama with h = t_max/n_fine and 2h, Richardson 2 phi(X^h) - phi(X^2h). eta must divide t_max
    into a divisor of n_fine steps (jnp.round(t_max/eta) is used; eta may be traced). Test function phi(x) = x^2.
    Returns means and SEMs over paths of phi(SGD), phi(SDE1), phi(SDE2) and of the differences SGD - SDE{1,2}."""
    _positive("eta", eta)
    _positive("t_max", t_max)
    _positive("noise_scale", noise_scale)
    n_fine, n_paths = _count("n_fine", n_fine, 2), _count("n_paths", n_paths, 2)
    if n_fine % 2:
        raise ValueError(f"n_fine must be even, got {n_fine}")
    if not np.isfinite(x0):
        raise ValueError("x0 must be finite")
    if not isinstance(eta, jax.core.Tracer):
        r = t_max / eta
        if abs(r - round(r)) > 1e-9 or n_fine % round(r):
            raise ValueError(f"eta must be t_max / N with N dividing n_fine, got eta={eta!r}")
    h = t_max / n_fine
    n_sgd = jnp.round(t_max / eta).astype(jnp.int32)
    every = n_fine // n_sgd  # fine steps per SGD step (traced int)
    s2 = noise_scale**2
    sig = lambda x: jnp.sqrt(eta * s2 * (1.0 + jnp.tanh(x) ** 2))  # sqrt(eta Sigma(x))
    b1 = lambda x: -_sme_grad(x)
    b2 = lambda x: -_sme_grad(x) - 0.25 * eta * _sme_grad_sq_grad(x)
    phi = lambda x: x**2

    def fine(carry, m):
        (sgd, w_acc, y1, y2, z1, z2, dw2) = carry
        dw = jnp.sqrt(h) * jax.random.normal(jax.random.fold_in(key, m), (n_paths,))
        # fine EM for both SMEs
        y1n = y1 + b1(y1) * h + sig(y1) * dw
        y2n = y2 + b2(y2) * h + sig(y2) * dw
        # coarse EM (step 2h) on the same path: update every second fine step
        dw2 = dw2 + dw
        even = (m % 2) == 1
        z1n = jnp.where(even, z1 + b1(z1) * 2 * h + sig(z1) * dw2, z1)
        z2n = jnp.where(even, z2 + b2(z2) * 2 * h + sig(z2) * dw2, z2)
        dw2 = jnp.where(even, 0.0, dw2)
        # SGD: one step of size eta every `every` fine steps, noise = accumulated Brownian increment
        w_acc = w_acc + dw
        fire = ((m + 1) % every) == 0
        sgdn = jnp.where(fire, sgd - eta * _sme_grad(sgd) + sig(sgd) * w_acc, sgd)
        w_acc = jnp.where(fire, 0.0, w_acc)
        return (sgdn, w_acc, y1n, y2n, z1n, z2n, dw2), None

    x = jnp.full((n_paths,), x0, dtype=jnp.result_type(float))
    zero = jnp.zeros_like(x)
    carry, _ = jax.lax.scan(fine, (x, zero, x, x, x, x, zero), jnp.arange(n_fine))
    sgd, _, y1, y2, z1, z2, _ = carry
    p_sgd = phi(sgd)
    p1 = 2 * phi(y1) - phi(z1)
    p2 = 2 * phi(y2) - phi(z2)
    out = {}
    for name, v in (("sgd", p_sgd), ("sde1", p1), ("sde2", p2), ("err1", p_sgd - p1), ("err2", p_sgd - p2)):
        m, s = _mean_sem(v)
        out[name], out[name + "_sem"] = m, s
    return out


# ---------------------------------------------------------------------------------------------------------- section 5
def adaptive_noisy_quadratic(
    kind: str, h, noise_std, eta, one_minus_beta, eps, batch_size, key, *, n_paths: int, num_steps: int,
    save_every: int, x0, one_minus_beta1=None, v0=None,
):
    """optax RMSprop (kind="rmsprop": v' = beta v + (1-beta) g^2, x' = x - eta g/(sqrt(v') + eps), v_0 = v0) or Adam
    (kind="adam", optax.adam with bias correction, 1-beta2 = one_minus_beta, 1-beta1 = one_minus_beta1) on the noisy
    quadratic L = sum_i h_i x_i^2 / 2 with g = h x + noise_std z / sqrt(B), z ~ N(0, I) (Malladi et al. 2022).
    h, x0: (d,). Returns {"loss", "loss_sem"} over `n_paths` paths at saves (num_steps // save_every + 1,)."""
    if kind not in ("rmsprop", "adam"):
        raise ValueError(f"kind must be 'rmsprop' or 'adam', got {kind!r}")
    h = jnp.asarray(h)
    x0 = jnp.asarray(x0, dtype=h.dtype)
    if h.ndim != 1 or x0.shape != h.shape:
        raise ValueError(f"h and x0 must be 1-D of equal length, got {h.shape} and {x0.shape}")
    check_finite_input("x0", x0)
    for name, v in (("h", h), ("noise_std", noise_std), ("eta", eta), ("one_minus_beta", one_minus_beta),
                    ("eps", eps), ("batch_size", batch_size)):
        _positive(name, v)
    if kind == "adam":
        if one_minus_beta1 is None:
            raise ValueError("one_minus_beta1 is required for Adam")
        _positive("one_minus_beta1", one_minus_beta1)
        opt = optax.adam(eta, b1=1.0 - one_minus_beta1, b2=1.0 - one_minus_beta, eps=eps)
    else:
        v0 = 0.0 if v0 is None else v0
        opt = optax.rmsprop(eta, decay=1.0 - one_minus_beta, eps=eps, eps_in_sqrt=False, initial_scale=v0)
    n_paths = _count("n_paths", n_paths, 2)
    d = h.shape[0]
    scale = noise_std / jnp.sqrt(batch_size)

    def stoch_loss(x, k_key):  # grad = h x + scale z, per path (x has shape (n_paths, d))
        z = jax.random.normal(k_key, x.shape, dtype=x.dtype)
        return jnp.sum(0.5 * h * x**2 + scale * z * x)

    init, step = optax_step(stoch_loss, opt, key=key)

    def obs(state):
        loss = 0.5 * jnp.sum(h * state[0] ** 2, axis=1)
        m, s = _mean_sem(loss)
        return {"loss": m, "loss_sem": s}

    res = iterate(step, init(jnp.broadcast_to(x0, (n_paths, d))), num_steps, save_every=save_every,
                  observables=obs, monitor=lambda s: s[0])
    return {**res.observables, "diverged": res.diverged}


# ---------------------------------------------------------------------------------------------------------- section 6
def cubic_well_grad(x, barrier, width):
    """U'(x) for U(x) = dU (3 (x/w)^2 - 2 (x/w)^3): well at 0 (U'' = 6 dU/w^2), barrier at w (U'' = -6 dU/w^2)."""
    y = x / width
    return barrier / width * (6.0 * y - 6.0 * y**2)


def escape_renewal(barrier, width, temperature, dt, key, *, n_paths: int, num_steps: int, x_exit_rel: float = 1.5):
    """Mean escape time from the cubic well by renewal counting: X' = X - U'(X) dt + sqrt(2 T dt) z (Euler-Maruyama of
    dX = -U' dt + sqrt(2T) dW; with dt = eta and T = eta C/(2B) this is exactly SGD with gradient-noise variance C/B),
    each path restarted at 0 whenever it passes x_exit = x_exit_rel * width. tau = t_total / mean(escapes per path)
    (renewal-reward; exact for exponential escape times). Returns {"tau", "tau_sem", "escapes"}."""
    for name, v in (("barrier", barrier), ("width", width), ("temperature", temperature), ("dt", dt)):
        _positive(name, v)
    n_paths, num_steps = _count("n_paths", n_paths, 2), _count("num_steps", num_steps)
    if not x_exit_rel > 1.0:
        raise ValueError(f"x_exit_rel must be > 1 (beyond the barrier), got {x_exit_rel!r}")
    x_exit = x_exit_rel * width
    amp = jnp.sqrt(2.0 * temperature * dt)

    def step(carry, k):
        x, n = carry
        z = jax.random.normal(jax.random.fold_in(key, k), (n_paths,))
        x = x - cubic_well_grad(x, barrier, width) * dt + amp * z
        out = x >= x_exit
        return (jnp.where(out, 0.0, x), n + out), None

    x0 = jnp.zeros((n_paths,), dtype=jnp.result_type(float))
    (_, n), _ = jax.lax.scan(step, (x0, jnp.zeros((n_paths,), dtype=x0.dtype)), jnp.arange(num_steps))
    m, s = _mean_sem(n)
    t_total = num_steps * dt
    tau = t_total / m
    return {"tau": tau, "tau_sem": tau * s / m, "escapes": jnp.sum(n)}


def sgd_escape_renewal(barrier, width, eta, batch, key, *, noise_scale=1.0, n_paths: int, num_steps: int,
                       x_exit_rel: float = 1.5):
    """Online minibatch SGD on the cubic well, x' = x - eta (U'(x) + sqrt(s h / B) z), z ~ N(0, 1): the mean of B
    per-example gradient noises of covariance C = s h (Hessian-shaped, h = U''(0) = 6 dU/w^2), i.e. T = eta s h/(2B)
    (Xie, Sato & Sugiyama 2021). This is the chain of `escape_renewal` with dt = eta and that T (same law, same code).
    Returns {"tau": num_steps eta / mean escapes, "tau_sem", "escapes": mean escapes per path} (time t = k eta)."""
    for name, v in (("barrier", barrier), ("width", width), ("eta", eta), ("batch", batch),
                    ("noise_scale", noise_scale)):
        _positive(name, v)
    temperature = eta * noise_scale * 6.0 * barrier / width**2 / (2.0 * batch)
    out = escape_renewal(barrier, width, temperature, eta, key, n_paths=n_paths, num_steps=num_steps,
                         x_exit_rel=x_exit_rel)
    return {"tau": out["tau"], "tau_sem": out["tau_sem"], "escapes": out["escapes"] / n_paths}
