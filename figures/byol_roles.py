"""BYOL roles and DirectPred: Wp-F alignment, collapse without stop-gradient / predictor, DirectPred vs trained."""

from __future__ import annotations

import json

import numpy as np

from derivations import byol as th
from figures import Figure
from figures.style import SIMULATION, THEORY, color, new_figure


def draw(datasets):
    roles, dp = datasets["byol.roles"], datasets["byol.directpred"]
    rc = json.loads(roles.attrs["config"])
    s2, ts = rc["sigma2"], roles["t"].values
    names = list(roles["case_name"].values)
    fig, axes = new_figure(3)
    every = max(1, len(ts) // 25)

    # (a) alignment of the symmetric predictor with F
    ax = axes[0, 0]
    sub = roles.isel(case=names.index("symmetric"), seed=0)
    ax.semilogy(ts[::every], np.maximum(sub["align"].values[::every], 1e-18), color=color(0), **SIMULATION,
                label="sim $\\|[W_p,F]\\|/(\\|W_p\\|\\|F\\|)$")
    ax.set_xlabel("time $t$")
    ax.set_ylabel("alignment error")
    ax.set_title("symmetric predictor aligns with $F=WXW^T$", fontsize=8)
    ax.legend(fontsize=6)

    # (b) collapse without stop-gradient (bound) and without predictor (closed form)
    ax = axes[0, 1]
    from derivations.byol import fixed_predictor_propagator, no_stopgrad_rate

    sub = roles.isel(case=names.index("no_stopgrad"), seed=0)
    wn = sub["w_norm"].values
    keep = wn[::every] / wn[0] > 1e-10
    ax.semilogy(ts[::every][keep], (wn[::every] / wn[0])[keep], color=color(1), **SIMULATION, label="sim, no stop-grad")
    ax.semilogy(ts, np.exp(-float(no_stopgrad_rate(0.02, s2)) * ts), color=color(1), linestyle="--",
                linewidth=1.2, label="bound $e^{-(c_{min}+\\eta)t}$")
    sub = roles.isel(case=names.index("no_predictor"), seed=0)
    wn = sub["w_norm"].values
    W0, Wa0 = sub["w0"].values, sub["wa0"].values
    thy = [np.linalg.norm(P[0, 0] * W0 + P[0, 1] * Wa0) for P in
           (np.asarray(fixed_predictor_propagator(t, 1.0, 0.02, 0.5, s2)) for t in ts)]
    ax.semilogy(ts, np.asarray(thy) / wn[0], color=color(2), **THEORY, label="theory $e^{At}$, no predictor")
    keep = wn[::every] / wn[0] > 1e-10  # below ~1e-10 ||W|| is integrator noise (atol 1e-11 per entry)
    ax.semilogy(ts[::every][keep], (wn[::every] / wn[0])[keep], color=color(2), **SIMULATION, label="sim, no predictor")
    ax.set_ylim(1e-12, 2)
    ax.set_xlabel("time $t$")
    ax.set_ylabel("$\\|W(t)\\|/\\|W(0)\\|$")
    ax.legend(fontsize=6)

    # (c) DirectPred vs trained predictor
    ax = axes[0, 2]
    dc = json.loads(dp.attrs["config"])
    tdp = dp["t"].values
    ev = max(1, len(tdp) // 25)
    ei = 0
    eta = float(dp["eta"].values[ei])
    preds = list(dp["pred"].values)
    styles = {0: ("trained $W_p$", "o"), 3: ("DirectPred $\\sqrt{\\alpha_p s_j}$", "s"), 2: ("DirectPred max-norm.", "^")}
    for code, (label, mk) in styles.items():
        sub = dp.isel(eta=ei, pred=preds.index(code), seed=0)
        s = dc["alpha_p"] * sub["w"].values ** 2
        for j in range(s.shape[1]):
            ax.plot(tdp[::ev], np.maximum(s[::ev, j], 1e-12), linestyle="none", marker=mk, markersize=3,
                    markerfacecolor="none", color=color(list(styles).index(code)), label=label if j == 0 else None)
    ax.axhline(float(th.fixed_point_p(eta, dc["sigma2"], 1)) ** 2, color="k", **THEORY, label="theory $p_+^2$")
    ax.set_yscale("log")
    ax.set_ylim(1e-8, 2)
    ax.set_xlabel("time $t$")
    ax.set_ylabel("$\\alpha_p s_j$")
    ax.set_title(f"$\\eta$={eta:g}", fontsize=8)
    ax.legend(fontsize=6)
    return fig


FIGURE = Figure(
    name="byol_roles",
    experiments=("byol.roles", "byol.directpred"),
    draw=draw,
    caption="(a) Wp's eigenvectors align with F under the symmetric predictor; (b) without stop-gradient ||W|| decays "
            "below e^{-(c_min+eta)t}, without predictor it follows the closed-form e^{At}; (c) DirectPred with the "
            "balanced scale reaches the trained predictor's p_+^2, the max-normalised one collapses in the L2 model.",
)
