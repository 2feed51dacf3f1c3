"""Mean escape time from a cubic well vs barrier/temperature: exact MFPT, Kramers' law, SDE and SGD Monte-Carlo;
dependence on the batch size B, the step size eta and the curvature h through T = eta h/(2B) and through h eta."""

import json

import numpy as np

from derivations.sgd_sde import exact_mfpt, kramers_time, sgd_chain_mfpt
from figures import Figure
from figures.style import SIMULATION, THEORY, color, hide_minor_labels, new_figure
from sims.experiments.sgd_sde import escape_batch_theory, escape_theory

RS = (0.25, 0.5, 1.0, 2.0, 4.0)  # dU/T of the discretisation-bias curves


def _bias_curve(r, h_eta):
    """tau_chain/tau_SDE depends only on (dU/T, h eta): evaluate at h = 1, B = 1, s = 1, dU = r h eta/2."""
    out = []
    for he in h_eta:
        dU = r * he / 2.0
        w = np.sqrt(6.0 * dU)
        out.append(sgd_chain_mfpt(dU, w, he, 1.0) / exact_mfpt(dU, w, he / 2.0))
    return np.array(out)


def draw(datasets):
    ds = datasets["sgd_sde.escape"].isel(seed=0)
    config = json.loads(ds.attrs["config"])
    fig, axes = new_figure(2, 2)
    rs = np.linspace(0.5, float(ds.r.max()) + 0.5, 40)
    th = np.array([escape_theory(config, r, config["sde_dt"])[:2] for r in rs])
    axes[0, 0].plot(rs, th[:, 0], color="k", **THEORY, label="exact MFPT")
    axes[0, 0].plot(rs, th[:, 1], color="k", linestyle="--", linewidth=1.0, label="Kramers")
    r = ds.r.values
    exact = np.array([escape_theory(config, float(x), config["sde_dt"])[0] for x in r])
    for n, (key, label) in enumerate((("sde", "SDE (Euler-Maruyama)"), ("sgd", "SGD, Hessian noise, B=1"))):
        axes[0, 0].errorbar(r, ds[f"{key}_tau"].values, yerr=ds[f"{key}_sem"].values, color=color(n), **SIMULATION,
                            label=label)
        axes[0, 1].errorbar(r, ds[f"{key}_tau"].values / exact, yerr=ds[f"{key}_sem"].values / exact, color=color(n),
                            **SIMULATION, label=f"{label} / exact")
    # Kramers' accuracy over a wide range of barrier/T (theory only: exact MFPT is the reference)
    rw = np.geomspace(0.25, 16.0, 40)
    dU, w = config["barrier"], config["width"]
    kr = [float(kramers_time(dU, w, dU / x)) / exact_mfpt(dU, w, dU / x, x_exit_rel=config["x_exit_rel"]) for x in rw]
    axes[0, 1].plot(rw, kr, color="k", linestyle="--", linewidth=1.0, label="Kramers / exact")
    axes[0, 1].axhspan(0.9, 1.1, color="gray", alpha=0.15, linewidth=0)
    axes[0, 0].set(yscale="log", xlabel=r"$\Delta U / T$  ($= 2B\Delta U/(\eta h)$ for SGD)", ylabel="mean escape time")
    axes[0, 1].axhline(1.0, color="gray", linewidth=0.5)
    axes[0, 1].set(xscale="log", xlabel=r"$\Delta U / T$", ylabel="ratio to the exact MFPT")

    # batch size / step size / curvature (sgd_sde.escape_batch): tau h is a function of dU/T for the SDE
    db = datasets["sgd_sde.escape_batch"].isel(seed=0)
    cb = json.loads(db.attrs["config"])
    rd = np.geomspace(0.2, 5.0, 40)
    dUb = cb["barrier"]
    wb = np.sqrt(6.0 * dUb)  # h = 1
    axes[1, 0].plot(rd, [exact_mfpt(dUb, wb, dUb / x, x_exit_rel=cb["x_exit_rel"]) for x in rd], color="k", **THEORY,
                    label="exact SDE MFPT")
    axes[1, 0].plot(rd, [float(kramers_time(dUb, wb, dUb / x)) for x in rd], color="k", linestyle="--", linewidth=1.0,
                    label="Kramers")
    batches = sorted(set(float(b) for b in db.batch.values))
    seen = set()
    for i in range(db.sizes["point"]):
        p = db.isel(point=i)
        B, eta, h = float(p.batch), float(p.eta), float(p.curv)
        t = escape_batch_theory(cb, B, eta, h)
        n = batches.index(B)
        curv = h != 1.0
        lab = (f"SGD, B={B:g}" + (" (h varied)" if curv else "")) if (B, curv) not in seen else None
        seen.add((B, curv))
        kw = dict(SIMULATION, marker="s" if curv else "o")
        axes[1, 0].errorbar([t["r"]], [float(p.tau) * h], yerr=[float(p.tau_sem) * h], color=color(n), **kw, label=lab)
        axes[1, 0].plot([t["r"]], [t["chain"] * h], "x", color=color(n), markersize=4)
        axes[1, 1].errorbar([t["h_eta"]], [float(p.tau) / t["sde"]], yerr=[float(p.tau_sem) / t["sde"]],
                            color=color(RS.index(min(RS, key=lambda x: abs(x - t["r"])))), **kw)
    axes[1, 0].plot([], [], "x", color="gray", label="exact SGD chain")
    axes[1, 0].set(xscale="log", yscale="log", xlabel=r"$\Delta U/T = 2B\Delta U/(\eta s h)$",
                   ylabel=r"$h\,\times$ mean escape time")
    he = np.geomspace(0.01, 0.25, 9)
    for n, x in enumerate(RS):
        axes[1, 1].plot(he, _bias_curve(x, he), color=color(n), **THEORY, label=rf"$\Delta U/T={x:g}$")
    axes[1, 1].axhline(1.0, color="gray", linewidth=0.5)
    axes[1, 1].set(xscale="log", xlabel=r"$h\eta$ (markers: $\eta = B\times$const at fixed $T$)",
                   ylabel=r"$\tau_{\rm SGD}/\tau_{\rm SDE}$ at equal $T$")
    for ax in axes.flat:
        ax.legend(fontsize=6)
    hide_minor_labels(axes[0, 1], axes[1, 0], axes[1, 1])
    return fig


FIGURE = Figure(
    name="sgd_sde_escape", experiments=("sgd_sde.escape", "sgd_sde.escape_batch"), draw=draw,
    caption="Escape from a cubic well. Top: exact mean first-passage time (line), Kramers' asymptotic law (dashed; "
            "right: its ratio to the exact MFPT over a wide range of barrier/temperature, grey band 10%), and "
            "Monte-Carlo escape times (renewal estimator, 1 SE) for the SDE and for SGD with Hessian-shaped noise at "
            "B = 1. Bottom: minibatch SGD at B = 1, 4, 16 (circles: the same temperatures T = eta h/(2B) reached "
            "through eta at B = 1 or through B at fixed eta; squares: curvature h varied at fixed eta/B), rescaled "
            "escape time h tau vs barrier/T against the exact SDE MFPT and the exact MFPT of the SGD chain (crosses); "
            "right: the discretisation bias tau_SGD/tau_SDE at equal T vs h eta, exact chain (lines) and Monte-Carlo.",
)
