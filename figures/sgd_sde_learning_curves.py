"""Test loss of minibatch SGD on Gaussian least squares: Bordelon-Pehlevan theory (lines) vs Monte-Carlo (markers)."""

import json

import numpy as np

from figures import Figure
from figures.style import SIMULATION, THEORY, color, new_figure
from sims.experiments.sgd_sde import ls_theory


def draw(datasets):
    ds = datasets["sgd_sde.learning_curves"].isel(seed=0)
    config = json.loads(ds.attrs["config"])
    bs = ds.b.values
    fig, axes = new_figure(len(bs) + 1)
    eta = float(ds.eta.values[0])
    steps = ds.step.values
    for j, b in enumerate(bs):
        ax = axes[0, j]
        for n, B in enumerate(ds.batch_size.values):
            p = ds.sel(eta=eta, b=b, batch_size=B)
            full, closed, rho = ls_theory(eta, float(b), int(B), config)
            ax.plot(steps, closed, color=color(n), **THEORY, label=f"theory B={int(B)}")
            ax.errorbar(steps[1:], p.loss.values[1:], yerr=p.loss_sem.values[1:], color=color(n), **SIMULATION,
                        label=f"MC B={int(B)}")
        ax.set(xlabel="step", ylabel="test loss", yscale="log", title=rf"$\lambda_i = i^{{-{b:g}}}$, $\eta={eta:g}$")
        ax.legend(fontsize=6)
    # fixed sample budget N = B * steps: loss after N/B steps vs batch size (theory line, MC where a save matches)
    from derivations.sgd_sde import learning_curve
    from sims.experiments.sgd_sde import ls_problem

    ax = axes[0, -1]
    # the largest budget that every simulated batch size reaches exactly at a saved step
    budget = max(n for n in range(1, int(steps[-1]) + 1)
                 if all(n % int(B) == 0 and n // int(B) in steps for B in ds.batch_size.values))
    Bs = np.arange(1, 33)
    for j, b in enumerate(bs):
        lam, c0, _, _ = (np.asarray(v) for v in ls_problem(config, float(b)))
        s2 = config["noise_std"] ** 2
        th = [float(learning_curve(lam, c0, eta, int(B), s2, np.array([budget // int(B)]))[0]) for B in Bs]
        ax.plot(Bs, th, color=color(j), **THEORY, label=rf"theory, $\lambda_i = i^{{-{b:g}}}$")
        for B in ds.batch_size.values:
            k = budget // int(B)
            if k in steps:
                p = ds.sel(eta=eta, b=b, batch_size=B, step=k)
                ax.errorbar([B], [float(p.loss)], yerr=[float(p.loss_sem)], color=color(j), **SIMULATION)
    ax.set(xscale="log", yscale="log", xlabel="batch size B", ylabel=f"test loss after {budget} samples",
           title=rf"fixed compute, $\eta={eta:g}$")
    ax.legend(fontsize=6)
    return fig


FIGURE = Figure(
    name="sgd_sde_learning_curves", experiments=("sgd_sde.learning_curves",), draw=draw,
    caption="Minibatch SGD on Gaussian least squares (power-law spectra): closed-form learning curve of Bordelon & "
            "Pehlevan 2022 (lines) vs Monte-Carlo SGD (markers, 1 SE).",
)
