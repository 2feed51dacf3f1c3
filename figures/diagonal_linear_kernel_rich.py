"""Kernel-to-rich transition of diagonal linear networks (Woodworth et al. 2020): distance of the gradient-flow
limit to the min-l2 and min-l1 interpolators vs the initialisation scale alpha, for depth 2 and 3."""

from __future__ import annotations

import json

import numpy as np

from derivations import diagonal_linear as th
from figures import Figure
from figures.style import SIMULATION, THEORY, color, new_figure
from toymodels.diagonal_linear import make_data


def _problem(ds):
    c = json.loads(ds.attrs["config"])
    return make_data(c["n"], c["d"], c["k"], c["data_seed"], c.get("mu", 0.0))


def draw(datasets):
    fig, axes = new_figure(3)
    for D, name, agrid in ((2, "diagonal_linear.gf_limit", np.geomspace(1e-5, 10, 61)),
                           (3, "diagonal_linear.gf_limit_depth3", np.geomspace(0.02, 10, 41))):
        ds = datasets[name]
        X, y, beta_star = _problem(ds)
        b1, b2 = th.min_l1_interpolator(X, y), th.min_l2_interpolator(X, y)
        theory = np.array([th.mirror_limit(X, y, a) if D == 2 else th.depth_limit(X, y, a, D) for a in agrid])
        sim = ds["beta"].isel(seed=0).values
        al = ds["alpha"].values
        for ax, ref, lab in ((axes[0, 0], b1, r"$\ell_1$"), (axes[0, 1], b2, r"$\ell_2$")):
            c = color(D - 2)
            ax.plot(agrid, np.linalg.norm(theory - ref, axis=1), color=c, label=f"D={D} theory (argmin Q)", **THEORY)
            ax.plot(al, np.linalg.norm(sim - ref, axis=1), color=c, label=f"D={D} gradient flow", **SIMULATION)
        # population risk for x ~ N(0, I) (the data's distribution, mu = 0): E(x.(b - b*))^2 = |b - b*|^2
        c = color(D - 2)
        axes[0, 2].plot(agrid, np.sum((theory - beta_star) ** 2, axis=1), color=c, label=f"D={D} theory", **THEORY)
        axes[0, 2].plot(al, np.sum((sim - beta_star) ** 2, axis=1), color=c, label=f"D={D} gradient flow",
                        **SIMULATION)
    for ax, lab in ((axes[0, 0], r"$\|\beta^\infty_\alpha - \beta_{\ell_1}\|_2$"),
                    (axes[0, 1], r"$\|\beta^\infty_\alpha - \beta_{\ell_2}\|_2$"),
                    (axes[0, 2], r"population risk $\|\beta^\infty_\alpha - \beta^*\|_2^2$")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(r"initialisation scale $\alpha$")
        ax.set_ylabel(lab)
    axes[0, 0].set_title("rich regime (small $\\alpha$)")
    axes[0, 1].set_title("kernel regime (large $\\alpha$)")
    axes[0, 2].set_title("generalisation: rich beats kernel")
    axes[0, 0].legend()
    return fig


FIGURE = Figure(
    name="diagonal_linear_kernel_rich",
    experiments=("diagonal_linear.gf_limit", "diagonal_linear.gf_limit_depth3"),
    draw=draw,
    caption="Distance of the gradient-flow limit of a diagonal linear network (n=20, d=40, 3-sparse target) to the "
            "min-l1 (left) and min-l2 (middle) interpolators, and its population risk for x ~ N(0, I) (right), vs alpha. Lines: argmin of the depth-D potential (dual "
            "Newton); markers: simulated gradient flow. D=3 approaches l1 polynomially in alpha, D=2 logarithmically.",
)
