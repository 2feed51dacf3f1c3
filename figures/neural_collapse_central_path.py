"""Central path of the MSE UFM (Han, Papyan & Donoho 2022): (a) distance of W to the least-squares classifier of the
current features along gradient flow vs the slaved prediction ||(dW*/dt) A^{-1}||; (b) SNR eigenvalues on the
renormalised central path vs the closed form log s + 2s + s^2/2 = const + 2t/(K n)."""

from __future__ import annotations

import json

import numpy as np

import derivations.neural_collapse as th
from figures import Figure
from figures.style import SIMULATION, THEORY, color, new_figure

EXP = "neural_collapse.central_path"


def _deviation(ds, cfg, sel):
    K, N, lam = cfg["K"], cfg["N_prox"], cfg["lam"]
    Y = np.kron(np.eye(K), np.ones((1, N)))
    Wt, H, Hdot = (ds[v].isel(sel).values for v in ("Wt", "H", "Hdot"))
    dev, slaved = [], []
    for i in range(len(ds["t"])):
        Ws, _ = th.ridge_ls_classifier(H[i], Y, lam, 0.0)
        dev.append(np.linalg.norm(Wt[i] - np.asarray(Ws)))
        slaved.append(np.linalg.norm(np.asarray(th.adiabatic_deviation(H[i], Hdot[i], Y, lam, 0.0))))
    return np.array(dev), np.array(slaved)


def draw(datasets):
    ds = datasets[EXP]
    cfg = json.loads(ds.attrs["config"])
    K = cfg["K"]
    n_cp = K * cfg["N_cp"]
    fig, axes = new_figure(2, 1)
    ax = axes[0, 0]
    t = ds["t"].values
    for j, sc in enumerate(ds["scale"].values):
        sel = {"scale": j, "seed": 0}
        dev, slaved = _deviation(ds, cfg, sel)
        ax.semilogy(t, slaved, color=color(j), label=f"slaved, scale {sc:g}", **THEORY)
        ax.semilogy(t[::2], dev[::2], color=color(j), label=r"$\|\tilde W-\tilde W^*(H)\|$ measured", **SIMULATION)
    ax.set_xlabel("time t")
    ax.set_ylabel("distance to the central path")
    ax.set_title(f"gradient flow, K={K}, N={cfg['N_prox']}, d={cfg['d']}")
    ax.legend(loc="upper right", fontsize=6)
    ax = axes[0, 1]
    tc = ds["tc"].values
    sel = {"scale": 0, "seed": 0}
    s = ds["s"].isel(sel).values
    tt = np.linspace(0.0, tc[-1], 200)
    for m in range(s.shape[1]):
        ax.plot(tt / (K * n_cp), np.asarray(th.renormalized_snr(s[0, m], tt, K, n_cp)), color=color(m),
                label=rf"closed form $s_{m + 1}$", **THEORY)
        ax.plot(tc[::2] / (K * n_cp), s[::2, m], color=color(m), label=rf"renormalised flow $s_{m + 1}$", **SIMULATION)
    ax.set_xlabel(r"$t/(Kn)$")
    ax.set_ylabel(r"SNR eigenvalue $s_j=\omega_j^2$")
    ax.set_title("renormalised central path")
    ax.legend(loc="lower right", fontsize=6)
    return fig


FIGURE = Figure(name="neural_collapse_central_path", experiments=(EXP,), draw=draw,
                caption="Central path of the MSE UFM (Han, Papyan & Donoho 2022). Left: along gradient flow of "
                        "(W, b, H) the distance of [W b] to the least-squares classifier of the current features "
                        "(markers) relaxes onto the slaved value ||(dW*/dt) A^{-1}|| (lines). Right: SNR eigenvalues on "
                        "the continually renormalised central path (markers) vs the closed form "
                        "log s + 2s + s^2/2 = const + 2t/(Kn) (lines).")
