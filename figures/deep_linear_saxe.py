"""Saxe et al. 2014 sigmoidal mode learning (theory lines, full-network gradient flow markers) for several singular
values, and the half-learning time against 1/s (closed form t_1/2 = (tau/2s) ln(s/u0 - 1), measured crossings)."""

from __future__ import annotations

import json

import numpy as np

import derivations.deep_linear as th
from figures import Figure
from figures.style import SIMULATION, THEORY, color, new_figure

EXP = "deep_linear.saxe"


def _half(t, u, s):
    i = np.nonzero(u >= s / 2)[0]
    if len(i) == 0 or i[0] == 0:
        return np.nan
    i = i[0]
    z0, z1 = np.log(u[i - 1] / (s - u[i - 1])), np.log(u[i] / (s - u[i]))
    return t[i - 1] - (t[i] - t[i - 1]) * z0 / (z1 - z0)


def draw(datasets):
    ds = datasets[EXP]
    cfg = json.loads(ds.attrs["config"])
    ratios = np.asarray(cfg["ratios"])
    fig, axes = new_figure(2, 1)
    ax = axes[0, 0]
    u0 = float(ds["u0"].values[0])
    for i, s in enumerate(ds["s"].values):
        t = ds["t"].sel(s=s, u0=u0).isel(seed=0).values
        u = ds["u"].sel(s=s, u0=u0).isel(seed=0).values
        dense = np.linspace(0, t[-1], 400)
        ax.plot(dense, np.asarray(th.saxe_mode(dense, s, u0)), color=color(i), label=f"s = {s:g}", **THEORY)
        ax.plot(t[::2], u[::2, 0], color=color(i), **SIMULATION)
        for a in range(1, len(ratios)):  # the other modes of the same network: stage-like learning
            ax.plot(dense, np.asarray(th.saxe_mode(dense, s * ratios[a], u0)), color=color(i), alpha=0.5,
                    linestyle="--", linewidth=1)
            ax.plot(t[::2], u[::2, a], color=color(i), alpha=0.5, **{**SIMULATION, "markersize": 2.5})
    ax.set_xlim(0, float(th.learning_time(float(ds["s"].values[0]) * ratios[-1], u0)) * 1.6)
    ax.set_xlabel("t / tau")
    ax.set_ylabel(r"mode strength $u_\alpha(t)$")
    ax.set_title(f"u0 = {u0:g}; dashed: weaker modes s·{ratios[1:].tolist()}")
    ax.legend()
    ax = axes[0, 1]
    inv = np.linspace(0.9 / (ds["s"].values.max() * ratios.max()), 1.1 / (ds["s"].values.min() * ratios.min()), 200)
    for j, u0 in enumerate(ds["u0"].values):
        ax.plot(inv, np.asarray(th.learning_time(1 / inv, u0)), color=color(j), label=f"u0 = {u0:g}", **THEORY)
        for s in ds["s"].values:
            t = ds["t"].sel(s=s, u0=u0).isel(seed=0).values
            u = ds["u"].sel(s=s, u0=u0).isel(seed=0).values
            for a, r in enumerate(ratios):
                ax.plot(1 / (s * r), _half(t, u[:, a], s * r), color=color(j), **SIMULATION)
    ax.set_xlabel("1 / s")
    ax.set_ylabel(r"half-learning time $t_{1/2}$")
    ax.set_title(r"$t_{1/2} = (\tau/2s)\ln(s/u_0 - 1)$")
    ax.legend()
    return fig


FIGURE = Figure(name="deep_linear_saxe", experiments=(EXP,), draw=draw,
                caption="Two-layer linear network from small balanced aligned weights: every mode follows Saxe's "
                        "sigmoid (lines: closed form; markers: full-matrix gradient flow), modes are learned in order "
                        "of their singular value, and the half-learning time grows like (tau/2s) ln(s/u0).")
