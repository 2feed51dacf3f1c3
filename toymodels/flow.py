"""Gradient flow (and any ODE) through `diffrax.diffeqsolve`, saving only observables at requested times.

`gradient_flow(f, y0, ts)` integrates dy/dt = f(t, y, args) adaptively (Tsit5, PID controller, rtol/atol
exposed) and returns a `FlowResult`. Divergence (a non-finite state or |y| > blowup) stops the solve through
a diffrax `Event` and is reported, never raised. jit- and vmap-safe.
"""

from __future__ import annotations

from typing import Any, Callable

import diffrax
import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int, PyTree

from ._divergence import check_blowup, check_finite_input, is_diverged


class FlowResult(eqx.Module):
    """Observables of an ODE solve at the save times `ts` (leading axis of every leaf of `observables`).

    `valid[i]` is False for save times the solve never reached (after divergence); those entries hold the
    last finite observables. `diverged_time` is the first save time not reached (+inf if no divergence). `num_steps` counts the
    accepted + rejected steps of the adaptive solver (the cost of this grid point).
    """

    ts: Float[Array, " n_save"]
    observables: PyTree
    valid: Bool[Array, " n_save"]
    diverged: Bool[Array, ""]
    diverged_time: Float[Array, ""]
    num_steps: Int[Array, ""]
    failed: Bool[Array, ""]


def negative_gradient(loss: Callable[..., Array]) -> Callable:
    """Vector field of gradient flow, f(t, y, args) = -grad loss(y, args) (args omitted if loss takes one argument)."""
    grad = jax.grad(loss)

    def vector_field(t, y, args):
        g = grad(y) if args is None else grad(y, args)
        return jax.tree_util.tree_map(jnp.negative, g)

    return vector_field


def _check_ts(ts) -> np.ndarray:
    arr = np.asarray(ts, dtype=float) if not isinstance(ts, jax.core.Tracer) else None
    if arr is None:
        return ts
    if arr.ndim != 1 or arr.size < 1:
        raise ValueError(f"ts must be a non-empty 1-D array of save times, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError("ts must be finite")
    if np.any(np.diff(arr) < 0):
        raise ValueError("ts must be non-decreasing")
    return arr


def gradient_flow(
    vector_field: Callable[[Any, PyTree, Any], PyTree],
    y0: PyTree,
    ts,
    *,
    args: Any = None,
    observables: Callable[[PyTree], PyTree] | None = None,
    t0: float | None = None,
    rtol: float = 1e-8,
    atol: float = 1e-10,
    dt0: float | None = None,
    solver: diffrax.AbstractSolver | None = None,
    max_steps: int = 200_000,
    blowup: float = 1e8,
) -> FlowResult:
    """Integrate dy/dt = vector_field(t, y, args) from `t0` (default ts[0]) and save `observables(y)` at `ts`.

    Adaptive Tsit5 with a PID controller (rtol, atol); divergence is an outcome: the solve stops at the
    first time a leaf is non-finite or exceeds `blowup` in absolute value, and `FlowResult.diverged` is set.
    """
    if not callable(vector_field):
        raise TypeError("vector_field must be callable as f(t, y, args)")
    blowup = check_blowup(blowup)
    if not (float(rtol) > 0 and float(atol) > 0):
        raise ValueError(f"rtol and atol must be positive, got rtol={rtol!r}, atol={atol!r}")
    check_finite_input("y0", y0)
    ts = _check_ts(ts)
    ts = jnp.asarray(ts)
    observables = observables if observables is not None else (lambda y: y)
    t0 = ts[0] if t0 is None else t0
    t1 = ts[-1]

    def event_cond(t, y, args, **kwargs):
        return is_diverged(y, blowup)

    def save_fn(t, y, args):
        return observables(y)

    saveat = diffrax.SaveAt(ts=ts, fn=save_fn)
    sol = diffrax.diffeqsolve(
        diffrax.ODETerm(vector_field),
        solver if solver is not None else diffrax.Tsit5(),
        t0=t0,
        t1=t1,
        dt0=dt0,
        y0=y0,
        args=args,
        saveat=saveat,
        stepsize_controller=diffrax.PIDController(rtol=rtol, atol=atol),
        event=diffrax.Event(event_cond),
        max_steps=max_steps,
        throw=False,
    )
    obs = sol.ys
    # diffrax fills save points after a terminating event or a failure with inf; mark them invalid.
    valid = jnp.isfinite(sol.ts)
    event = diffrax.RESULTS.event_occurred == sol.result
    failed = (sol.result != diffrax.RESULTS.successful) & ~event
    diverged = event | (~jnp.all(valid) & ~failed)
    # the first save time that was not reached: the divergence happened in (previous save, this save]
    first_invalid = jnp.min(jnp.where(valid, jnp.inf, ts))
    diverged_time = jnp.where(diverged, first_invalid, jnp.inf)
    # replace unreached saves by the last finite observables
    idx_last = jnp.maximum(jnp.sum(valid) - 1, 0)
    obs = jax.tree_util.tree_map(
        lambda x: jnp.where(valid.reshape((-1,) + (1,) * (x.ndim - 1)), x, x[idx_last]), obs
    )
    num_steps = sol.stats["num_steps"] + sol.stats.get("num_rejected_steps", 0)
    return FlowResult(
        ts=ts,
        observables=obs,
        valid=valid,
        diverged=diverged,
        diverged_time=diverged_time,
        num_steps=jnp.asarray(num_steps),
        failed=failed,
    )
