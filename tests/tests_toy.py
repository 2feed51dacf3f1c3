"""A tiny stochastic experiment used by the CLI and reliability tests (registered by the tests only)."""

import jax
import jax.numpy as jnp
import numpy as np

from sims.grid import Grid
from sims.registry import Check, Experiment


def _simulate(point, key, config):
    from toymodels.iterate import gd_step, iterate

    n, dt = config["n"], config["dt"]
    x0 = 1.0 + 0.01 * jax.random.normal(key)
    res = iterate(gd_step(lambda x: 0.5 * point["a"] * x**2, dt), x0, n, save_every=n)
    return {"x_end": res.observables[-1], "x0": x0}


def _compare(ds, config):
    t = config["n"] * config["dt"]
    a = ds["a"].values[:, None]
    theory = ds["x0"].values * np.exp(-a * t)
    sim = ds["x_end"].values
    err = float(np.max(np.abs(sim - theory)))
    # (1 - a dt)^n vs exp(-a t): |difference| <= x0 * n (a dt)^2 / 2 ~ 2.6e-3 for a <= 1, dt = 0.005, n = 200
    return [Check("GD -> exp(-a t) as dt -> 0", float(theory.max()), float(sim.max()), err, 5e-3, "O(dt) bound")]


TOY = Experiment(
    name="deep_linear.cli_toy", family="deep_linear", claim="toy for CLI tests", paper="none",
    grid=lambda quick: Grid.product(a=[0.5, 1.0]), simulate=_simulate, compare=_compare,
    config=lambda quick: {"n": 200, "dt": 0.005},
)
