"""Discrete training maps (GD, SGD, any optax optimiser) iterated with `lax.scan`, saving observables every `save_every` steps.

`iterate(step, state0, num_steps, save_every=...)` applies state_{k+1} = step(state_k, k) exactly (no ODE
approximation) and reports the first diverged step instead of raising; after divergence the state is frozen
at its last finite value so observables stay finite. jit- and vmap-safe.
"""

from __future__ import annotations

from typing import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Bool, Int, PyTree

from ._divergence import check_blowup, check_finite_input, is_diverged


class IterateResult(eqx.Module):
    """Observables at steps 0, save_every, 2*save_every, ..., num_steps (leading axis of `observables`).

    `valid[i]` is False for saves at or after the diverged step (they repeat the last finite observables);
    `diverged_step` is the first step k whose iterate was non-finite or exceeded `blowup` (-1 if none);
    `final` is the last finite state.
    """

    steps: Int[Array, " n_save"]
    observables: PyTree
    valid: Bool[Array, " n_save"]
    diverged: Bool[Array, ""]
    diverged_step: Int[Array, ""]
    final: PyTree


def _check_counts(num_steps, save_every) -> tuple[int, int]:
    if not isinstance(num_steps, int) or isinstance(num_steps, bool) or num_steps < 0:
        raise ValueError(f"num_steps must be a non-negative int, got {num_steps!r}")
    if not isinstance(save_every, int) or isinstance(save_every, bool) or save_every < 1:
        raise ValueError(f"save_every must be a positive int, got {save_every!r}")
    if num_steps % save_every:
        raise ValueError(f"num_steps ({num_steps}) must be a multiple of save_every ({save_every})")
    return num_steps, save_every


def iterate(
    step: Callable[[PyTree, Array], PyTree],
    state0: PyTree,
    num_steps: int,
    *,
    save_every: int = 1,
    observables: Callable[[PyTree], PyTree] | None = None,
    monitor: Callable[[PyTree], PyTree] | None = None,
    blowup: float = 1e8,
) -> IterateResult:
    """Iterate state_{k+1} = step(state_k, k) for k = 0..num_steps-1 and save observables(state) every `save_every` steps.

    `monitor(state)` selects what is tested for divergence (default: the whole state); a state diverges when a
    monitored leaf is non-finite or has |x| > blowup.
    """
    num_steps, save_every = _check_counts(num_steps, save_every)
    blowup = check_blowup(blowup)
    check_finite_input("state0", state0)
    observables = observables if observables is not None else (lambda s: s)
    monitor = monitor if monitor is not None else (lambda s: s)
    n_save = num_steps // save_every

    def one_step(carry, k):
        state, diverged_step = carry
        new = step(state, k)
        bad = is_diverged(monitor(new), blowup)
        alive = diverged_step < 0
        first_bad = alive & bad
        diverged_step = jnp.where(first_bad, k + 1, diverged_step)
        keep_new = alive & ~bad
        state = jax.tree_util.tree_map(lambda a, b: jnp.where(keep_new, a, b), new, state)
        return (state, diverged_step), None

    def one_save(carry, i):
        ks = i * save_every + jnp.arange(save_every)
        carry, _ = jax.lax.scan(one_step, carry, ks)
        return carry, observables(carry[0])

    init_bad = is_diverged(monitor(state0), blowup)
    carry0 = (state0, jnp.where(init_bad, 0, -1))
    obs0 = observables(state0)
    (final, diverged_step), obs = jax.lax.scan(one_save, carry0, jnp.arange(n_save))
    obs = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a[None], b], axis=0), obs0, obs)
    steps = jnp.arange(n_save + 1) * save_every
    diverged = diverged_step >= 0
    valid = ~diverged | (steps < diverged_step)
    return IterateResult(
        steps=steps, observables=obs, valid=valid, diverged=diverged, diverged_step=diverged_step, final=final
    )


def gd_step(loss: Callable[[PyTree], Array], lr) -> Callable[[PyTree, Array], PyTree]:
    """Plain gradient descent, w <- w - lr * grad loss(w) (simultaneous update of every leaf)."""
    grad = jax.grad(loss)

    def step(params, k):
        return jax.tree_util.tree_map(lambda p, g: p - lr * g, params, grad(params))

    return step


def optax_step(
    loss: Callable[..., Array], optimizer: optax.GradientTransformation, key: Array | None = None
) -> tuple[Callable[[PyTree], PyTree], Callable[[PyTree, Array], PyTree]]:
    """(init, step) for any optax optimiser on state = (params, opt_state).

    With `key`, the loss is stochastic: loss(params, fold_in(key, k)) at step k (minibatch or gradient noise).
    """
    grad = jax.grad(loss)

    def init(params):
        return (params, optimizer.init(params))

    def step(state, k):
        params, opt_state = state
        g = grad(params) if key is None else grad(params, jax.random.fold_in(key, k))
        updates, opt_state = optimizer.update(g, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state)

    return init, step
