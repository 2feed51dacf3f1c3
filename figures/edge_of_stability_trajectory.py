"""Kreisler et al. 2023 Fig.-1 type: loss, sharpness and GFS sharpness along GD (D = 4, w0 = (5, 5, .05, .05))."""

from __future__ import annotations

import numpy as np

from figures import Figure
from figures.style import color, new_figure


def draw(datasets):
    ds = datasets["edge_of_stability.trajectory"].isel(point=0, seed=0)
    eta = float(ds["eta"])
    steps = ds["step"].values
    fig, axes = new_figure(2)
    ax = axes[0, 0]
    ax.loglog(steps + 1, np.maximum(ds["loss"].values, 1e-32), color=color(0), lw=0.6)
    ax.set_xlabel("step + 1")
    ax.set_ylabel("loss")
    ax.set_title(rf"D=4, $\eta$={eta}")
    ax = axes[0, 1]
    ax.plot(steps, ds["sharpness"].values, color=color(1), lw=0.8, label=r"sharpness $S(w_t)$")
    ax.plot(steps, ds["phi"].values, color=color(2), lw=1.4, label=r"GFS sharpness $\phi(w_t)$")
    ax.axhline(2 / eta, color="k", ls="--", lw=1, label=r"$2/\eta$")
    ax.axhline(2 * np.sqrt(2) / eta, color="grey", ls=":", lw=1, label=r"$2\sqrt{2}/\eta$")
    ax.set_xscale("symlog", linthresh=10)
    ax.set_xlim(0, steps.max())
    ax.set_xlabel("step")
    ax.set_ylabel("sharpness")
    ax.legend()
    return fig


FIGURE = Figure(
    name="edge_of_stability_trajectory",
    experiments=("edge_of_stability.trajectory",),
    draw=draw,
    caption="GD on the tied depth-4 scalar network: the loss and the sharpness oscillate (edge of stability) while the "
            "GFS sharpness decreases monotonically and settles just below 2/eta.",
)
