"""BYOL eigenmode trajectories: matrix ODE (markers) vs decoupled eigenmode ODEs (lines) (Tian et al. 2021)."""

from __future__ import annotations

import json

import numpy as np
from scipy.integrate import solve_ivp

from derivations import byol as th
from figures import Figure
from figures.style import SIMULATION, THEORY, color, new_figure


def _theory(p0, w0, ts, alpha, eta, beta, s2, ema):
    f = th.mode_rhs_numpy()
    m = len(p0)

    def rhs(t, y):
        p, w, a = y[:m], y[m:2 * m], y[2 * m:]
        dp, dw, da = f(p, w, w if not ema else a, alpha, eta, beta, s2)
        return np.concatenate([np.broadcast_to(x, (m,)) for x in (dp, dw, dw if not ema else da)])

    tt = np.linspace(ts[0], ts[-1], 400)
    sol = solve_ivp(rhs, (tt[0], tt[-1]), np.concatenate([p0, w0, w0]), t_eval=tt, method="DOP853", rtol=1e-10)
    return tt, sol.y[:m].T, sol.y[m:2 * m].T


def draw(datasets):
    ds = datasets["byol.eigenmodes"]
    config = json.loads(ds.attrs["config"])
    s2, ts = config["sigma2"], ds["t"].values
    p0, u0 = np.asarray(config["p0"]), np.asarray(config["u0"])
    picks = [0, 1]
    fig, axes = new_figure(2, len(picks))
    for r, i in enumerate(picks):
        eta, alpha, beta, ema = (float(ds[n].values[i]) for n in ("eta", "alpha_p", "beta", "ema"))
        sub = ds.isel(point=i, seed=0)
        tt, pt, wt = _theory(p0, u0 / np.sqrt(alpha), ts, alpha, eta, beta, s2, bool(ema))
        every = max(1, len(ts) // 20)
        for j in range(len(p0)):
            axes[r, 0].plot(tt, pt[:, j], color=color(j), **THEORY)
            axes[r, 0].plot(ts[::every], sub["p"].values[::every, j], color=color(j), **SIMULATION)
            axes[r, 1].plot(tt, np.sqrt(alpha) * wt[:, j], color=color(j), **THEORY, label=f"mode {j}" if r == 0 else None)
            axes[r, 1].plot(ts[::every], np.sqrt(alpha) * sub["w"].values[::every, j], color=color(j), **SIMULATION)
        pp = float(th.fixed_point_p(eta, s2, 1))
        for ax in axes[r]:
            if np.isfinite(pp):
                ax.axhline(pp, color="k", linestyle=":", linewidth=0.8)
            ax.set_xlabel("time $t$")
            ax.set_title(f"$\\eta$={eta:g}, $\\alpha_p$={alpha:g}, $\\beta$={beta:g}", fontsize=8)
        axes[r, 0].set_ylabel("predictor eigenvalue $p_j$")
        axes[r, 1].set_ylabel("online mode $\\sqrt{\\alpha_p}\\,w_j$")
    axes[0, 1].legend(fontsize=6)
    return fig


FIGURE = Figure(
    name="byol_modes",
    experiments=("byol.eigenmodes",),
    draw=draw,
    caption="Matrix gradient flow of (W, Wp, Wa) from an aligned start (markers) against the per-mode scalar ODEs "
            "(lines, scipy); dotted: non-collapsed fixed point p_+.",
)
