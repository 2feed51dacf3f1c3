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
    # fixed compute C = B t (sgd_sde.optimal_batch): excess test loss after C/B steps vs B, theory B* marked
    from derivations.sgd_sde import learning_curve, ms_spectral_radius
    from sims.experiments.sgd_sde import ls_problem, optimal_batch_theory

    ob = datasets["sgd_sde.optimal_batch"].isel(seed=0)
    oc = json.loads(ob.attrs["config"])
    ax = axes[0, -1]
    s2 = oc["noise_std"] ** 2
    etas, budgets = [float(e) for e in ob.eta.values], [int(c) for c in ob.budget.values]
    eta_o = 0.3 if 0.3 in etas else etas[0]
    C = 1024 if 1024 in budgets else budgets[-1]
    Bs = ob.batch.values.astype(int)
    Bline = np.geomspace(Bs.min(), Bs.max(), 121)
    for j, b in enumerate(ob.b.values):
        lam, c0, _, _ = (np.asarray(v) for v in ls_problem(oc, float(b)))
        th = np.array([float(learning_curve(lam, c0, eta_o, B, s2, np.array([C / B]))[0])
                       if float(ms_spectral_radius(lam, eta_o, B)) < 1 else np.nan for B in Bline])
        ax.plot(Bline, th - s2 / 2, color=color(j), **THEORY, label=rf"$\lambda_i = i^{{-{b:g}}}$")
        p = ob.sel(eta=eta_o, b=b, budget=C)
        ax.errorbar(Bs, p.loss.values - s2 / 2, yerr=p.loss_sem.values, color=color(j), **SIMULATION)
        thB, B_star = optimal_batch_theory(eta_o, float(b), C, oc, Bs)
        ax.plot([B_star], [thB[list(Bs).index(B_star)] - s2 / 2], marker="*", markersize=9, color=color(j),
                linestyle="none")
        k = int(np.argmin(p.loss.values))
        ax.plot([Bs[k]], [0.55 * (p.loss.values[k] - s2 / 2)], marker="^", markersize=5, color=color(j),
                markerfacecolor="none", linestyle="none")  # just below the MC point it marks
    ax.plot([], [], marker="*", color="k", linestyle="none", label=r"theory $B^*$")
    ax.plot([], [], marker="^", color="k", markerfacecolor="none", linestyle="none", label="MC argmin (below)")
    ax.set(xscale="log", yscale="log", xlabel="batch size B", ylabel=r"excess loss $L_{C/B} - \sigma^2/2$",
           title=rf"fixed compute $C = Bt = {C}$, $\eta={eta_o:g}$")
    ax.legend(fontsize=6)
    return fig


FIGURE = Figure(
    name="sgd_sde_learning_curves", experiments=("sgd_sde.learning_curves", "sgd_sde.optimal_batch"), draw=draw,
    caption="Minibatch SGD on Gaussian least squares (power-law spectra): closed-form learning curve of Bordelon & "
            "Pehlevan 2022 (lines) vs Monte-Carlo SGD (markers, 1 SE). Right: at a fixed compute budget C = B t the "
            "excess test loss after C/B steps vs batch size B (theory line, MC markers), with the theory's "
            "compute-optimal B* over the simulated powers of two (star) and the Monte-Carlo argmin (triangle, drawn "
            "just below its point) for three spectra; the line interpolates the closed form in B with t = C/B.",
)
