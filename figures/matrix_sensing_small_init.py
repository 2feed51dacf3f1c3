"""Over-parameterised matrix sensing (r = d): final recovery error ||UU^T - M*||_F vs init scale alpha (log-log).
Markers: GD, one colour per measurement draw; lines: slope p = 2(1 - rho) predicted from the spectrum of A*A(M*)
(spectral phase, Stoger & Soltanolkotabi 2021), at the fitted intercept, over the fitted range alpha <= 1e-6.
Right: a large init interpolates (training residual ~ 1e-14) but does not recover M*."""

from __future__ import annotations

import json

import numpy as np

from figures import Figure
from figures.style import SIMULATION, THEORY, color, new_figure


def draw(datasets):
    from sims.experiments.matrix_sensing import _si_spectral, _si_theory

    ds = datasets["matrix_sensing.small_init"]
    config = json.loads(ds.attrs["config"])
    alphas = ds["alpha"].values
    small = alphas < config["large_alpha_min"]
    fit = alphas <= config["fit_alpha_max"]
    a_small = alphas[small]
    fig, axes = new_figure(2)
    ax, ax2 = axes[0, 0], axes[0, 1]
    for i, s in enumerate(ds["seed"].values[:4]):
        _, _, norm_M = _si_spectral(config, int(s))
        err = ds["error"].sel(seed=s).values[:, -1] / norm_M
        p, _, _, _ = _si_theory(config, int(s), alphas[fit])
        ax.plot(a_small, err[small], color=color(i), **SIMULATION)
        # predicted slope, intercept = mean of log(err) - p log(alpha) over the fitted points
        c = np.mean(np.log(err[fit]) - p * np.log(alphas[fit]))
        aa = np.geomspace(alphas[fit].min(), alphas[fit].max(), 20)
        ax.plot(aa, np.exp(c) * aa**p, color=color(i), **THEORY, label=f"draw {s}: $p$={p:.2f}")
        train = ds["train"].sel(seed=s).values[:, -1]
        ax2.plot(train[small], err[small], color=color(i), **SIMULATION)
        ax2.plot(train[~small], err[~small], color=color(i), **{**SIMULATION, "marker": "s", "markersize": 5})
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("init scale $\\alpha$")
    ax.set_ylabel("$\\|UU^\\top - M^*\\|_F / \\|M^*\\|_F$")
    ax.legend(fontsize=6)
    ax2.axhline(1.0, color="0.5", linewidth=0.8, linestyle=":")
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.set_xlabel("training residual $\\|\\mathcal{A}(UU^\\top) - y\\| / \\|y\\|$")
    ax2.set_ylabel("test error (relative)")
    ax2.set_title("circles: small $\\alpha$; squares: $\\alpha \\geq$ " + f"{config['large_alpha_min']:g}", fontsize=7)
    return fig


FIGURE = Figure(
    name="matrix_sensing_small_init",
    experiments=("matrix_sensing.small_init",),
    draw=draw,
    caption="Over-parameterised GD (r = d = 20, m = 80 Gaussian measurements, below the PSD uniqueness threshold): "
            "small random init recovers M* with error ~ alpha^p, p = 2(1 - ln(1+eta g_2)/ln(1+eta g_1)) from the top "
            "eigenvalues of A*A(M*) (markers: GD; lines: predicted slope); a large init interpolates but does not "
            "recover M* (right).",
)
