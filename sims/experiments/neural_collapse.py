"""Neural collapse in the unconstrained features model: closed-form minimisers vs gradient descent.

Theory: derivations.neural_collapse (sympy-checked closed forms). Simulation: toymodels.neural_collapse (GD on the
UFM losses from random initialisations, Hessians by autodiff). GD fixed points are exact critical points, so the
only error is residual non-convergence: near a minimiser manifold with smallest non-zero Hessian eigenvalue mu the
distance to the manifold is <= ||grad L|| / mu and the loss gap <= ||grad L||^2 / (2 mu) (both measured per run).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import derivations.neural_collapse as th
import toymodels.neural_collapse as tm
from sims.grid import Grid
from toymodels.flow import gradient_flow, negative_gradient
from sims.registry import Check, Experiment, register

FAMILY = "neural_collapse"
FLOOR = 1e-9  # float64 rounding floor for norms of O(1) matrices accumulated over ~1e4 GD steps
EIG_CUT = 1e-8  # Hessian eigenvalues below this are the exact zero modes of the O(d) symmetry (rounding ~1e-15)
MODES = {0: "no bias", 1: "bias, lam_b=0", 2: "bias, lam_b>0"}


def _lam_b_of(mode, lam_b_pos):
    return None if mode == 0 else (0.0 if mode == 1 else lam_b_pos)


def _mu_and_min(eigs):
    """(smallest eigenvalue above EIG_CUT, most negative eigenvalue) of a Hessian spectrum."""
    mu = jnp.min(jnp.where(eigs > EIG_CUT, eigs, jnp.inf))
    return mu, eigs[0]


CONVERGED = 1e-6


def _converged(dist, ok, label):
    """GD reached a critical manifold: max ||grad L||/mu <= CONVERGED (else the error bounds below are vacuous)."""
    worst = float(np.where(ok, dist, np.inf).max())
    return Check(f"[{label}] GD converged: max ||grad L||/mu over runs", 0.0, worst, worst, CONVERGED,
                 "distance to the critical manifold; the per-run error bounds use it")


# ------------------------------------------------------------------------------------------------------------------
# 1. MSE UFM global minimiser: norms of W, H, b, loss and Gram matrices vs GD over a grid of regularisation weights
def _mse_global_config(quick):
    return {"K": 4, "N": 5, "d": 5, "lr": 0.8, "steps": 6000 if quick else 20000, "scale": 1.0, "lam_b_pos": 0.5}


def _mse_global_grid(quick):
    ratios = [0.1, 0.3, 0.7, 1.5] if quick else [0.05, 0.1, 0.2, 0.3, 0.45, 0.6, 0.7, 0.8, 0.9, 1.1, 1.5, 2.0]
    skews = [2.0] if quick else [1.0, 2.0]
    return Grid.product(mode=[0, 1, 2], ratio=ratios, skew=skews)


def _mse_lams(point, cfg):
    lam = point["ratio"] * th.mse_threshold_lambda(cfg["K"], cfg["N"])
    return lam * point["skew"], lam / point["skew"]


def _mse_global_sim(point, key, cfg):
    K, N, d = cfg["K"], cfg["N"], cfg["d"]
    labels = tm.class_labels([N] * K)
    Y = tm.one_hot_targets(labels, K)
    lam_W, lam_H = _mse_lams(point, cfg)
    mode = point["mode"]
    use_b = jnp.where(mode == 0, 0.0, 1.0)
    lam_b = jnp.where(mode == 2, cfg["lam_b_pos"], 0.0)

    def loss(p):
        return tm.mse_loss({"W": p["W"], "H": p["H"], "b": use_b * p["b"]}, Y, lam_W, lam_H, lam_b)

    p0 = tm.init_params(key, K, d, K * N, scale=cfg["scale"])
    res = tm.train_gd(loss, p0, cfg["lr"], cfg["steps"], save_every=cfg["steps"], observables=loss)
    p = res.final
    eigs = tm.hessian_eigvals(loss, p)
    mu, emin = _mu_and_min(eigs)
    M, _, _ = tm.class_means(p["H"], labels, K)
    ncm = tm.nc_metrics(p["H"], p["W"], labels, use_b * p["b"])
    return {
        "norm_W": jnp.linalg.norm(p["W"]),
        "norm_H": jnp.linalg.norm(p["H"]),
        "norm_b": jnp.linalg.norm(use_b * p["b"]),
        "loss": loss(p),
        "grad_norm": tm.grad_norm(loss, p),
        "mu": mu,
        "eig_min": emin,
        "gram_W": p["W"] @ p["W"].T,
        "gram_M": M.T @ M,
        "nc1": ncm["nc1"],
        "within_scatter": ncm["within_scatter"],
        "diverged": res.diverged,
    }


def _mse_global_compare(ds, cfg):
    K, N, d = cfg["K"], cfg["N"], cfg["d"]
    checks = []
    for mode, label in MODES.items():
        sub = ds.sel(mode=mode)
        lb = _lam_b_of(mode, cfg["lam_b_pos"])
        lam = sub["ratio"].values[:, None] * th.mse_threshold_lambda(K, N)
        lam_W = lam * sub["skew"].values[None, :]
        lam_H = lam / sub["skew"].values[None, :]
        nW, nH, nb = (np.asarray(x)[..., None] for x in th.mse_minimizer_norms(K, N, d, lam_W, lam_H, lb))
        Lth = np.asarray(th.mse_min_loss(K, N, lam_W, lam_H, lb))[..., None]
        GW, GM = (np.asarray(x)[..., None, :, :] for x in th.mse_minimizer_gram(K, N, lam_W, lam_H, lb))
        ok = ~sub["diverged"].values
        gn, mu = sub["grad_norm"].values, sub["mu"].values
        dist = gn / mu  # distance to the minimiser manifold (local strong convexity transversal to it)
        tol = 10 * dist + FLOOR
        n_div = int((~ok).sum())
        checks.append(Check(f"[{label}] no GD run diverged", 0.0, float(n_div), float(n_div), 0.0,
                            "lr below 2/L_max at every grid point"))
        checks.append(_converged(dist, ok, label))
        for name, sim, theory, scale in (("||W||_F", sub["norm_W"].values, nW, 1.0),
                                         ("||H||_F", sub["norm_H"].values, nH, 1.0),
                                         ("||b||", sub["norm_b"].values, nb, 1.0)):
            err = np.abs(sim - theory)
            r = np.where(ok, err / tol, np.inf)
            i = np.unravel_index(np.argmax(r), r.shape)
            checks.append(Check(
                f"[{label}] {name} of GD end point = closed-form minimiser (max over lam grid x seeds, error/bound)",
                float(theory[i] if theory.shape == r.shape else np.broadcast_to(theory, r.shape)[i]),
                float(sim[i]), float(r.max()), 1.0,
                f"error normalised by 10 ||grad L||/mu + {FLOOR:g} (distance to minimiser manifold); worst abs err "
                f"{float(err.max()):.2e}"))
        loss_err = np.abs(sub["loss"].values - Lth)
        ltol = 10 * gn ** 2 / (2 * mu) + 1e-12
        r = np.where(ok, loss_err / ltol, np.inf)
        i = np.unravel_index(np.argmax(r), r.shape)
        checks.append(Check(f"[{label}] final loss = closed-form global minimum (error/bound)",
                            float(np.broadcast_to(Lth, r.shape)[i]), float(sub["loss"].values[i]), float(r.max()), 1.0,
                            "bound 10 ||grad L||^2/(2 mu) + 1e-12 (PL inequality near the minimiser)"))
        gerr = np.maximum(np.linalg.norm(sub["gram_W"].values - GW, axis=(-2, -1)),
                          np.linalg.norm(sub["gram_M"].values - GM, axis=(-2, -1)))
        gtol = 2 * (np.maximum(nW, nH) + 1) * 10 * dist + FLOOR
        r = np.where(ok, gerr / gtol, np.inf)
        checks.append(Check(f"[{label}] Gram matrices W W^T = kappa Z and M^T M = Z/kappa (ETF/OF geometry, error/bound)",
                            0.0, float(gerr.max()), float(r.max()), 1.0,
                            "bound 2 (||W||+1) x 10 ||grad L||/mu: Lipschitz constant of the Gram map times distance"))
        emin = sub["eig_min"].values
        n_bad = int(((emin < -EIG_CUT) | ~ok).sum())
        checks.append(Check(f"[{label}] every random init ends at a PSD-Hessian point (no run ends at a saddle)", 0.0,
                            float(n_bad), float(n_bad), 0.0, f"count of runs with Hessian eigenvalue < -{EIG_CUT:g}"))
    return checks


register(Experiment(
    name=f"{FAMILY}.mse_global",
    family=FAMILY,
    claim="Regularised MSE UFM (no bias, free bias, regularised bias): GD from random inits reaches the closed-form "
          "global minimiser (norms of W, H, b, loss, ETF/orthogonal-frame Gram), zero past K sqrt(N lam_W lam_H) = 1",
    paper="Zhou et al. 2022; Tirer & Bruna 2022",
    grid=_mse_global_grid,
    config=_mse_global_config,
    simulate=_mse_global_sim,
    compare=_mse_global_compare,
    dims={"gram_W": ("k", "k2"), "gram_M": ("k", "k2")},
    seeds=2,
))


# ------------------------------------------------------------------------------------------------------------------
# 2. NC1-NC4 along training; asymptotic NC1 rate rho^(2t), rho = 1 - lr (lam_H + kappa a / (K N))
def _ncdyn_config(quick):
    return {"K": 4, "N": 5, "d": 3, "lr": 0.4, "steps": 4000 if quick else 8000, "save_every": 20, "scale": 1.0}


def _ncdyn_grid(quick):
    return Grid.product(ratio=[0.2, 0.5] if quick else [0.1, 0.2, 0.35, 0.5, 0.7])


NC_KEYS = ("nc1", "equinorm_H", "equinorm_W", "equiangle_H", "equiangle_W", "nc3", "nc4", "within_scatter")


def _ncdyn_sim(point, key, cfg):
    K, N, d = cfg["K"], cfg["N"], cfg["d"]
    labels = tm.class_labels([N] * K)
    Y = tm.one_hot_targets(labels, K)
    lam = point["ratio"] * th.mse_threshold_lambda(K, N)

    def loss(p):
        return tm.mse_loss(p, Y, lam, lam, 0.0)

    def obs(p):
        m = tm.nc_metrics(p["H"], p["W"], labels, p["b"])
        return {**m, "loss": loss(p)}

    p0 = tm.init_params(key, K, d, K * N, scale=cfg["scale"])
    res = tm.train_gd(loss, p0, cfg["lr"], cfg["steps"], save_every=cfg["save_every"], observables=obs)
    out = {k: v for k, v in res.observables.items()}
    out["diverged"] = res.diverged
    out["grad_norm"] = tm.grad_norm(loss, res.final)
    out["mu"], out["eig_min"] = _mu_and_min(tm.hessian_eigvals(loss, res.final))
    return out


def _fit_slope(t, y):
    A = np.stack([t, np.ones_like(t)], axis=1)
    return float(np.linalg.lstsq(A, y, rcond=None)[0][0])


def nc1_tail_slopes(steps, nc1, lo=1e-26, hi=1e-6):
    """Slopes of log NC1 per step over the two halves of the window where lo < NC1 < hi (asymptotic regime)."""
    sel = np.where((nc1 > lo) & (nc1 < hi))[0]
    if sel.size < 6:
        return np.nan, np.nan
    h = sel.size // 2
    s1 = _fit_slope(steps[sel[:h]].astype(float), np.log(nc1[sel[:h]]))
    s2 = _fit_slope(steps[sel[h:]].astype(float), np.log(nc1[sel[h:]]))
    return s1, s2


def _ncdyn_compare(ds, cfg):
    K, N, lr = cfg["K"], cfg["N"], cfg["lr"]
    checks = []
    steps = ds["step"].values
    worst = (0.0, 0.0, -1.0, 1.0)
    finals = {k: 0.0 for k in NC_KEYS}
    n_div = int(ds["diverged"].values.sum())
    for r in ds["ratio"].values:
        lam = r * th.mse_threshold_lambda(K, N)
        rho = float(th.nc1_contraction(K, N, lam, lam, lr, 0.0))
        pred = 2 * np.log(rho)
        for s in ds["seed"].values:
            nc1 = ds["nc1"].sel(ratio=r, seed=s).values
            s1, s2 = nc1_tail_slopes(steps, nc1)
            err = abs(s2 - pred)
            tol = 3 * abs(s2 - s1) + 1e-3 * abs(pred)
            if not np.isfinite(err) or err / tol > worst[2] / worst[3]:
                worst = (pred, s2, err, tol)
            for k in NC_KEYS:
                finals[k] = max(finals[k], float(ds[k].sel(ratio=r, seed=s).values[-1]))
    checks.append(Check("no GD run diverged", 0.0, float(n_div), float(n_div), 0.0, "lr = 0.4 < 2/L"))
    checks.append(_converged(ds["grad_norm"].values / ds["mu"].values, ~ds["diverged"].values, "NC dynamics"))
    checks.append(Check(
        "NC1 decays as rho^(2t), rho = 1 - lr (lam_H + kappa a/(KN)) (fitted log-slope per step, worst over lam x seeds)",
        worst[0], worst[1], worst[2], worst[3],
        "exact within-class dynamics E <- (I - lr (W^T W/n + lam_H)) E, W -> W*; tolerance 3 |slope(2nd half) - "
        "slope(1st half)| (remaining transient) + 1e-3 relative"))
    # NC2-NC3 at the end: distance to the minimiser manifold <= ||grad L||/mu; a perturbation delta of the class
    # means / classifier rows moves std/mean of norms by <= delta/min norm and cosines by <= 2 delta/min norm.
    lam_all = ds["ratio"].values * th.mse_threshold_lambda(K, N)
    w_row = np.sqrt(np.asarray(th.mse_minimizer_norms(K, N, cfg["d"], lam_all, lam_all, 0.0)[0]) ** 2 / K)
    h_cls = np.sqrt(np.asarray(th.mse_minimizer_norms(K, N, cfg["d"], lam_all, lam_all, 0.0)[1]) ** 2 / (K * N))
    min_norm = float(np.minimum(w_row, h_cls).min())
    dist = float((ds["grad_norm"].values / ds["mu"].values).max())
    tol = 10 * 2 * dist / min_norm + FLOOR
    for k in ("equinorm_H", "equinorm_W", "equiangle_H", "equiangle_W", "nc3"):
        checks.append(Check(f"{k} -> 0 at the end of training (max over lam x seeds)", 0.0, finals[k], finals[k], tol,
                            f"tolerance 10 x 2 (||grad L||/mu) / min(||w_k||, ||h_k||) + {FLOOR:g} = {tol:.2e}"))
    checks.append(Check("NC1 -> 0: final NC1 below 1e-20 (max over lam x seeds)", 0.0, finals["nc1"], finals["nc1"],
                        1e-20, "within-class scatter decays geometrically to the float64 floor (~1e-30)"))
    checks.append(Check("NC4: classifier = nearest class centre on every sample at the end", 0.0, finals["nc4"],
                        finals["nc4"], 0.0, "disagreement fraction"))
    return checks


register(Experiment(
    name=f"{FAMILY}.nc_dynamics",
    family=FAMILY,
    claim="NC1-NC4 along GD on the MSE UFM with bias: NC1 -> 0 at the predicted geometric rate, simplex-ETF means "
          "and classifier (equinorm, cos = -1/(K-1)), self-duality, nearest-class-centre agreement",
    paper="Papyan, Han & Donoho 2020; Han, Papyan & Donoho 2022",
    grid=_ncdyn_grid,
    config=_ncdyn_config,
    simulate=_ncdyn_sim,
    compare=_ncdyn_compare,
    dims={k: ("step",) for k in NC_KEYS + ("loss",)},
    coords=lambda cfg: {"step": np.arange(cfg["steps"] // cfg["save_every"] + 1) * cfg["save_every"]},
    seeds=2,
))


# ------------------------------------------------------------------------------------------------------------------
# 3. Strict saddles: non-collapsed critical points (missing singular modes) have Hessian eigenvalue mu_- < 0
def _saddle_config(quick):
    return {"K": 4, "N": 3, "d": 5, "lr": 0.8, "steps": 4000 if quick else 12000}


def _saddle_grid(quick):
    return Grid.product(mode=[0, 1], rank=[0, 1, 2, 3, 4], ratio=[0.3, 0.7] if quick else [0.1, 0.3, 0.5, 0.7, 0.9])


def _random_orthogonal(key, d):
    Q, R = jnp.linalg.qr(jax.random.normal(key, (d, d)))
    return Q * jnp.sign(jnp.diag(R))[None, :]


def _saddle_sim(point, key, cfg):
    K, N, d = cfg["K"], cfg["N"], cfg["d"]
    labels = tm.class_labels([N] * K)
    Y = tm.one_hot_targets(labels, K)
    lam = point["ratio"] * th.mse_threshold_lambda(K, N)
    lam_W, lam_H = lam * 1.5, lam / 1.5
    Q = _random_orthogonal(key, d)
    r = point["rank"]
    W0, H0, b0 = th.partial_critical_point(K, N, d, lam_W, lam_H, (jnp.arange(K) < r).astype(float), False, Q)
    W1, H1, b1 = th.partial_critical_point(K, N, d, lam_W, lam_H, (jnp.arange(K - 1) < r).astype(float), True, Q)
    nb = point["mode"] == 0
    p = {"W": jnp.where(nb, W0, W1), "H": jnp.where(nb, H0, H1), "b": jnp.where(nb, b0, b1)}
    use_b = jnp.where(nb, 0.0, 1.0)

    def loss(q):
        return tm.mse_loss({"W": q["W"], "H": q["H"], "b": use_b * q["b"]}, Y, lam_W, lam_H, 0.0)

    eigs = tm.hessian_eigvals(loss, p)
    M, mu_G, _ = tm.class_means(p["H"], labels, K)
    mn = jnp.linalg.norm(M - mu_G[:, None], axis=0)
    # found numerically (no bias): GD from a random init inside the invariant set {w_k = 0, h_{k,i} = 0 for k >= r}
    # (the gradient keeps it there), i.e. with classes >= r switched off; it converges to a non-collapsed critical
    # point of the full loss when r < K.
    def loss_nb(q):
        return tm.mse_loss(q, Y, lam_W, lam_H, 0.0)

    kW, kH = jax.random.split(jax.random.fold_in(key, 1))
    on = (jnp.arange(K) < r).astype(float)
    q0 = {"W": on[:, None] * jax.random.normal(kW, (K, d)) / jnp.sqrt(d),
          "H": on[jnp.asarray(labels)][None, :] * jax.random.normal(kH, (d, K * N))}
    res = tm.train_gd(loss_nb, q0, cfg["lr"], cfg["steps"], save_every=cfg["steps"], observables=loss_nb)
    g_eigs = tm.hessian_eigvals(loss_nb, res.final)
    g_mu, _ = _mu_and_min(g_eigs)
    return {"grad_norm": tm.grad_norm(loss, p), "eig_min": eigs[0], "n_negative": jnp.sum(eigs < -EIG_CUT),
            "equinorm_H": jnp.std(mn) / jnp.mean(mn), "loss": loss(p),
            "gd_grad_norm": tm.grad_norm(loss_nb, res.final), "gd_eig_min": g_eigs[0], "gd_mu": g_mu,
            "gd_diverged": res.diverged}


def _saddle_compare(ds, cfg):
    K, N = cfg["K"], cfg["N"]
    checks = []
    gn = float(ds["grad_norm"].values.max())
    checks.append(Check("constructed points are critical: max ||grad L||", 0.0, gn, gn, 1e-12,
                        "float64 rounding of O(1) gradients"))
    for mode, label in ((0, "no bias"), (1, "bias, lam_b=0")):
        nmodes = K if mode == 0 else K - 1
        sub = ds.sel(mode=mode)
        lam = sub["ratio"].values * th.mse_threshold_lambda(K, N)
        mu_m = np.asarray(th.zero_point_hessian_min_eig(K, N, lam * 1.5, lam / 1.5))
        ranks = sub["rank"].values
        sad = ranks < nmodes
        emin = sub["eig_min"].values  # [rank, ratio, seed]
        th_full = np.broadcast_to(mu_m[None, :, None], emin.shape)
        err = np.abs(emin - th_full)[sad]
        i = np.argmax(err)
        checks.append(Check(
            f"[{label}] non-collapsed critical points (rank < {nmodes}): smallest Hessian eigenvalue = "
            "(lam_W+lam_H)/2 - sqrt(((lam_W-lam_H)/2)^2 + 1/(K^2 N)) < 0",
            float(th_full[sad].ravel()[i]), float(emin[sad].ravel()[i]), float(err.max()), 1e-10,
            "numerical Hessian by autodiff + eigvalsh in float64; tolerance 1e-10 ~ 1e5 eps x ||Hess||"))
        n_nonneg = int((emin[sad] >= 0).sum())
        checks.append(Check(f"[{label}] every non-collapsed critical point is a strict saddle (count with eig_min >= 0)",
                            0.0, float(n_nonneg), float(n_nonneg), 0.0, "all lam below threshold"))
        full = emin[~sad]
        worst = float(-full.min()) if full.size else 0.0
        checks.append(Check(f"[{label}] the collapsed (full-rank ETF/OF) critical point has a PSD Hessian",
                            0.0, float(full.min()), max(worst, 0.0), EIG_CUT, "zero modes of the O(d) symmetry only"))
        if mode == 0:
            ok = ~sub["gd_diverged"].values
            dist = np.where(ok, sub["gd_grad_norm"].values / sub["gd_mu"].values, np.inf)
            checks.append(Check("[no bias, found by GD in the invariant set of r < K live classes] GD converged to a "
                                "critical point: max ||grad L||/mu", 0.0, float(dist.max()), float(dist.max()),
                                CONVERGED, "distance to the critical manifold"))
            ge = sub["gd_eig_min"].values
            err = np.abs(ge - th_full)[sad]
            tol = 1e-10 + 10 * float(dist.max())  # Hessian is Lipschitz with O(1) constant near the point
            i = np.argmax(err)
            checks.append(Check("[no bias, found by GD] smallest Hessian eigenvalue at the GD-found non-collapsed "
                                "critical points = mu_- < 0", float(th_full[sad].ravel()[i]),
                                float(ge[sad].ravel()[i]), float(err.max()), tol,
                                "tolerance 1e-10 + 10 x distance (Hessian Lipschitz constant O(1) in these units)"))
    return checks


register(Experiment(
    name=f"{FAMILY}.strict_saddle",
    family=FAMILY,
    claim="MSE UFM landscape: every non-collapsed critical point (a missing singular mode) is a strict saddle with "
          "Hessian eigenvalue (lam_W+lam_H)/2 - sqrt(((lam_W-lam_H)/2)^2 + 1/(K^2 N)) < 0; the NC point is a minimum",
    paper="Zhou et al. 2022",
    grid=_saddle_grid,
    config=_saddle_config,
    simulate=_saddle_sim,
    compare=_saddle_compare,
    seeds=2,
))


# ------------------------------------------------------------------------------------------------------------------
# 4. Cross-entropy UFM: ETF minimiser with scale A = (K-1)/K log((1-(K-1)g)/g)
def _ce_config(quick):
    return {"K": 4, "N": 3, "d": 4, "lr": 1.0, "steps": 4000 if quick else 20000, "scale": 1.0, "lam_b": 0.01}


def _ce_grid(quick):
    return Grid.product(ratio=[0.1, 0.4, 0.8, 1.5] if quick else [0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 0.9, 1.2, 1.5],
                        skew=[1.0] if quick else [1.0, 2.0])


def _ce_sim(point, key, cfg):
    K, N, d = cfg["K"], cfg["N"], cfg["d"]
    labels = tm.class_labels([N] * K)
    lam = point["ratio"] / (K * np.sqrt(N))
    lam_W, lam_H = lam * point["skew"], lam / point["skew"]

    def loss(p):
        return tm.ce_loss(p, labels, lam_W, lam_H, cfg["lam_b"])

    p0 = tm.init_params(key, K, d, K * N, scale=cfg["scale"])
    res = tm.train_gd(loss, p0, cfg["lr"], cfg["steps"], save_every=cfg["steps"], observables=loss)
    p = res.final
    eigs = tm.hessian_eigvals(loss, p)
    mu, emin = _mu_and_min(eigs)
    M, _, _ = tm.class_means(p["H"], labels, K)
    ncm = tm.nc_metrics(p["H"], p["W"], labels, p["b"])
    return {"norm_W": jnp.linalg.norm(p["W"]), "norm_H": jnp.linalg.norm(p["H"]), "norm_b": jnp.linalg.norm(p["b"]),
            "loss": loss(p), "grad_norm": tm.grad_norm(loss, p), "mu": mu, "eig_min": emin,
            "gram_W": p["W"] @ p["W"].T, "gram_M": M.T @ M, "nc1": ncm["nc1"], "diverged": res.diverged}


def _ce_compare(ds, cfg):
    K, N = cfg["K"], cfg["N"]
    lam = ds["ratio"].values[:, None] / (K * np.sqrt(N))
    lam_W, lam_H = lam * ds["skew"].values[None, :], lam / ds["skew"].values[None, :]
    m = {k: np.asarray(v)[..., None] for k, v in th.ce_minimizer(K, N, lam_W, lam_H).items()}
    ok = ~ds["diverged"].values
    gn, mu = ds["grad_norm"].values, ds["mu"].values
    dist = gn / mu
    tol = 10 * dist + FLOOR
    checks = [Check("no GD run diverged", 0.0, float((~ok).sum()), float((~ok).sum()), 0.0, "lr below 2/L"),
              _converged(dist, ok, "CE")]
    for name, sim, theory in (("||W||_F", ds["norm_W"].values, m["norm_W"]), ("||H||_F", ds["norm_H"].values, m["norm_H"]),
                              ("||b||", ds["norm_b"].values, 0.0 * m["norm_W"])):
        theory = np.broadcast_to(theory, sim.shape)
        err = np.abs(sim - theory)
        r = np.where(ok, err / tol, np.inf)
        i = np.unravel_index(np.argmax(r), r.shape)
        checks.append(Check(f"CE UFM: {name} of GD end point = ETF minimiser with scale A(g) (error/bound)",
                            float(theory[i]), float(sim[i]), float(r.max()), 1.0,
                            f"error / (10 ||grad L||/mu + {FLOOR:g}); worst abs err {float(err.max()):.2e}"))
    Lth = np.broadcast_to(m["loss"], gn.shape)
    lerr = np.abs(ds["loss"].values - Lth)
    r = np.where(ok, lerr / (10 * gn ** 2 / (2 * mu) + 1e-12), np.inf)
    i = np.unravel_index(np.argmax(r), r.shape)
    checks.append(Check("CE UFM: final loss = log(1+(K-1)e^{-KA/(K-1)}) + K g A (error/bound)", float(Lth[i]),
                        float(ds["loss"].values[i]), float(r.max()), 1.0, "bound 10 ||grad L||^2/(2 mu) + 1e-12"))
    Jc = np.eye(K) - np.ones((K, K)) / K
    GW = (m["w_row"] ** 2 * K / (K - 1))[..., None, None] * Jc
    GM = (m["h_class"] ** 2 * K / (K - 1))[..., None, None] * Jc
    gerr = np.maximum(np.linalg.norm(ds["gram_W"].values - GW, axis=(-2, -1)),
                      np.linalg.norm(ds["gram_M"].values - GM, axis=(-2, -1)))
    gtol = 2 * (np.maximum(m["norm_W"], m["norm_H"]) + 1) * 10 * dist + FLOOR
    r = np.where(ok, gerr / gtol, np.inf)
    checks.append(Check("CE UFM: W W^T and M^T M are scaled simplex ETFs ||w||^2 K/(K-1) (I - 11^T/K) (error/bound)",
                        0.0, float(gerr.max()), float(r.max()), 1.0, "bound 2 (||W||+1) x 10 ||grad L||/mu"))
    n_bad = int(((ds["eig_min"].values < -EIG_CUT) | ~ok).sum())
    checks.append(Check("CE UFM: every random init ends at a PSD-Hessian point", 0.0, float(n_bad), float(n_bad), 0.0,
                        f"count of runs with Hessian eigenvalue < -{EIG_CUT:g}"))
    return checks


register(Experiment(
    name=f"{FAMILY}.ce_global",
    family=FAMILY,
    claim="Cross-entropy UFM: GD reaches the simplex-ETF minimiser whose logit scale A = ||w_k|| ||h_k|| solves "
          "g'(A)=0, A = (K-1)/K log((1-(K-1)g)/g), g = sqrt(N lam_W lam_H) (zero for K g >= 1); bias -> 0",
    paper="Zhu et al. 2021",
    grid=_ce_grid,
    config=_ce_config,
    simulate=_ce_sim,
    compare=_ce_compare,
    dims={"gram_W": ("k", "k2"), "gram_M": ("k", "k2")},
    seeds=2,
))


# ------------------------------------------------------------------------------------------------------------------
# 5. Minority collapse: imbalanced no-bias MSE UFM, per-class norms vs imbalance ratio R
def _minority_config(quick):
    return {"K_major": 2, "K_minor": 2, "n_major": 16, "d": 5, "lam": 0.045, "lr": 1.0,
            "steps": 4000 if quick else 20000, "scale": 1.0}


def _minority_grid(quick):
    return Grid.product(R=[1.0, 2.0, 4.0, 8.0, 16.0])


def _minority_sizes(R, cfg):
    nB = jnp.round(cfg["n_major"] / R)
    return jnp.concatenate([jnp.full(cfg["K_major"], float(cfg["n_major"])), jnp.full(cfg["K_minor"], 1.0) * nB])


def _minority_sim(point, key, cfg):
    KA, KB, nA, d = cfg["K_major"], cfg["K_minor"], cfg["n_major"], cfg["d"]
    K = KA + KB
    labels = tm.class_labels([nA] * K)  # fixed buffer of n_major slots per class; minority classes use a mask
    Y = tm.one_hot_targets(labels, K)
    sizes = _minority_sizes(point["R"], cfg)
    slot = jnp.asarray(np.tile(np.arange(nA), K))
    w = (slot < sizes[jnp.asarray(labels)]).astype(float)
    lam = cfg["lam"]

    def loss(p):
        return tm.mse_loss(p, Y, lam, lam, 0.0, weights=w)

    p0 = tm.init_params(key, K, d, K * nA, scale=cfg["scale"], bias=False)
    res = tm.train_gd(loss, p0, cfg["lr"], cfg["steps"], save_every=cfg["steps"], observables=loss)
    p = res.final
    M, _, _ = tm.class_means(p["H"], labels, K, w)
    wn = jnp.linalg.norm(p["W"], axis=1)
    wmin = p["W"][KA:]
    cos = (wmin[0] @ wmin[1]) / jnp.maximum(jnp.linalg.norm(wmin[0]) * jnp.linalg.norm(wmin[1]), 1e-300)
    # Hessian restricted to the active samples: inactive (masked) features have zero Hessian rows
    eigs = tm.hessian_eigvals(loss, p)
    mu, emin = _mu_and_min(eigs)
    return {"w_norm": wn, "h_norm": jnp.linalg.norm(M, axis=0), "minority_dist": jnp.linalg.norm(wmin[0] - wmin[1]),
            "minority_cos": cos, "grad_norm": tm.grad_norm(loss, p), "mu": mu, "eig_min": emin,
            "diverged": res.diverged, "sizes": sizes}


def _minority_compare(ds, cfg):
    KA = cfg["K_major"]
    sizes = ds["sizes"].values  # [R, seed, K]
    wth, hth = (np.asarray(x) for x in th.mse_imbalanced_class_norms(sizes, cfg["lam"], cfg["lam"]))
    ok = ~ds["diverged"].values
    gn, mu = ds["grad_norm"].values, ds["mu"].values
    tol = (10 * gn / mu + FLOOR)[..., None]
    checks = [Check("no GD run diverged", 0.0, float((~ok).sum()), float((~ok).sum()), 0.0, "lr below 2/L"),
              _converged(gn / mu, ok, "imbalanced")]
    for name, sim, theory, sl in (("majority ||w_k||", ds["w_norm"].values, wth, slice(0, KA)),
                                  ("minority ||w_k||", ds["w_norm"].values, wth, slice(KA, None)),
                                  ("minority ||h_k||", ds["h_norm"].values, hth, slice(KA, None))):
        err = np.abs(sim - theory)[..., sl]
        r = np.where(ok[..., None], err / tol, np.inf)
        i = np.unravel_index(np.argmax(r), r.shape)
        checks.append(Check(f"imbalanced MSE UFM: {name} = (sqrt(n_k) - n lam)_+ closed form over R (error/bound)",
                            float(theory[..., sl][i]), float(sim[..., sl][i]), float(r.max()), 1.0,
                            f"bound 10 ||grad L||/mu + {FLOOR:g}; worst abs err {float(err.max()):.2e}"))
    Rstar = th.minority_threshold_ratio(cfg["K_major"], cfg["K_minor"], cfg["n_major"], cfg["lam"])
    Rs = ds["R"].values
    collapsed_sim = (ds["minority_dist"].values.max(axis=-1) < 1e-6)
    collapsed_th = (wth[..., KA:].max(axis=(-1, -2)) == 0)
    n_mis = int((collapsed_sim != collapsed_th).sum())
    checks.append(Check(f"minority classifiers collapse (w_i = w_j = 0) exactly for R >= R* = {Rstar:.3g} "
                        f"(grid R = {Rs.tolist()}; count of mismatches)", 0.0, float(n_mis), float(n_mis), 0.0,
                        "collapse in sim: ||w_i - w_j|| < 1e-6"))
    return checks


register(Experiment(
    name=f"{FAMILY}.minority_collapse",
    family=FAMILY,
    claim="Class-imbalanced MSE UFM (no bias): per-class singular values (sqrt(n_k) - n sqrt(lam_W lam_H))_+ so the "
          "minority classifiers collapse to each other (at 0) past a closed-form imbalance ratio R*",
    paper="Fang et al. 2021; Dang et al. 2023",
    grid=_minority_grid,
    config=_minority_config,
    simulate=_minority_sim,
    compare=_minority_compare,
    dims={"w_norm": ("k",), "h_norm": ("k",), "sizes": ("k",)},
    seeds=2,
))


# ------------------------------------------------------------------------------------------------------------------
# 6. Extended UFM with one more (linear or ReLU) layer: best-of-seeds loss = three-factor closed form, OF structure
def _ext_config(quick):
    return {"K": 4, "N": 3, "d": 16, "lr": 0.25, "steps": 8000 if quick else 30000, "scale": 1.0}


def _ext_grid(quick):
    return Grid.product(relu=[0, 1], ratio=[0.2, 0.5, 0.8, 1.1, 1.3] if quick else [0.1, 0.2, 0.35, 0.5, 0.65, 0.8,
                                                                                     0.9, 1.05, 1.1, 1.15, 1.3])


def _ext_sim(point, key, cfg):
    K, N, d = cfg["K"], cfg["N"], cfg["d"]
    labels = tm.class_labels([N] * K)
    Y = tm.one_hot_targets(labels, K)
    lam = point["ratio"] * th.EXT_Q_CRIT / (K * N ** (1.0 / 3.0))
    relu = point["relu"] > 0

    def act(X):
        return jnp.where(relu, jax.nn.relu(X), X)

    def loss(p):
        return tm.extended_mse_loss(p, Y, lam, lam, lam, relu=relu)

    p0 = tm.init_extended_params(key, K, d, K * N, scale=cfg["scale"])
    res = tm.train_gd(loss, p0, cfg["lr"], cfg["steps"], save_every=cfg["steps"], observables=loss)
    p = res.final
    H2 = act(p["W1"] @ p["H"])
    m2 = tm.nc_metrics(H2, p["W"], labels)
    m1 = tm.nc_metrics(p["H"], p["W"] @ p["W1"], labels)
    M2, _, _ = tm.class_means(H2, labels, K)
    nrm = jnp.linalg.norm(M2, axis=0)
    C = (M2.T @ M2) / jnp.maximum(nrm[:, None] * nrm[None, :], 1e-300)
    wn = jnp.linalg.norm(p["W"], axis=1)
    CW = (p["W"] @ p["W"].T) / jnp.maximum(wn[:, None] * wn[None, :], 1e-300)
    off = 1.0 - jnp.eye(K)
    return {"loss": loss(p), "grad_norm": tm.grad_norm(loss, p), "diverged": res.diverged,
            "nc1_H2": m2["nc1"], "nc1_H1": m1["nc1"], "of_dev_means": jnp.max(jnp.abs(C) * off),
            "of_dev_W": jnp.max(jnp.abs(CW) * off), "min_mean_entry": jnp.min(M2),
            "mean_norm_spread": jnp.std(nrm) / jnp.mean(nrm)}


def _ext_compare(ds, cfg):
    K, N = cfg["K"], cfg["N"]
    checks = []
    for relu, label in ((0, "linear"), (1, "ReLU")):
        sub = ds.sel(relu=relu)
        lam = sub["ratio"].values * th.EXT_Q_CRIT / (K * N ** (1.0 / 3.0))
        Lth = np.asarray(th.extended_ufm_minimizer(K, N, lam, lam, lam)["loss"])  # [ratio]
        L = np.where(sub["diverged"].values, np.inf, sub["loss"].values)  # [ratio, seed]
        i = np.arange(L.shape[0])
        best = L.argmin(axis=1)
        Lbest = L[i, best]
        gbest = sub["grad_norm"].values[i, best]
        alive = Lth < 0.5 - 1e-12
        below = float(np.max(Lth[:, None] - L))
        checks.append(Check(f"[{label}] no run goes below the closed-form three-factor minimum (max of L* - L)", 0.0,
                            below, max(below, 0.0), 1e-12, "float64 rounding of the loss"))
        err = np.abs(Lbest - Lth)
        m = th.extended_ufm_minimizer(K, N, lam, lam, lam)
        window = (m["q"] > th.EXT_Q_CRIT) & (m["q"] < th.EXT_Q_SPINODAL)  # metastable non-zero branch exists
        window = np.asarray(window)
        if relu == 0:
            glob = ~window
            checks.append(Check(
                "[linear] best-of-seeds GD loss = closed-form global minimum (modes s = t^3, t^4 - t + q = 0, "
                "q = K (N lam^3)^(1/3), first-order jump to 0 at q* = 2^(-4/3)); max over lam outside (q*, q_sp)",
                float(Lth[glob][err[glob].argmax()]), float(Lbest[glob][err[glob].argmax()]),
                float(err[glob].max()), 1e-9,
                f"best runs converged geometrically (max ||grad L|| = {float(gbest.max()):.1e}); 1e-9 >> rounding"))
            # every run ends at one of the predicted local minima: m of the K modes on the non-zero branch
            Lm = np.asarray(m["loss_m"])  # [ratio, K+1] (NaN past the spinodal: only m = 0)
            Lm = np.where(np.isnan(Lm), 0.5, Lm)
            dev = np.min(np.abs(L[:, :, None] - Lm[:, None, :]), axis=-1)
            fin = np.isfinite(L)
            n_div = int((~fin).sum())
            checks.append(Check("[linear] every GD run ends at a predicted local minimum: loss = (K-m)/(2K) + m f(s+) "
                                "for some m (max distance over non-diverged runs)", 0.0, float(dev[fin].max()),
                                float(dev[fin].max()), 1e-9,
                                f"local minima = each mode at 0 or on the non-zero branch s+; 1e-9 >> rounding; "
                                f"{n_div} of {L.size} runs diverged (cubic growth from the random init at this lr) "
                                "and are skipped"))
            for key, name in (("nc1_H2", "NC1 of the last-layer features"),
                              ("of_dev_means", "class means form an orthogonal frame, max |cos|"),
                              ("of_dev_W", "classifier rows orthogonal, max |cos|"),
                              ("mean_norm_spread", "class-mean norms equal (std/mean)")):
                v = sub[key].values[i, best][alive]
                checks.append(Check(f"[linear] at the best run, {name} -> 0", 0.0, float(v.max()), float(v.max()),
                                    1e-6, "best runs have ||grad L|| < 1e-8; metric Lipschitz const O(1/min norm)"))
        else:
            # ReLU: GD converges sublinearly (pre-activations of the minimiser sit at the kink 0), so test that the
            # best run is in the global basin: its gap is below 1/100 of the gap to the nearest other critical value
            # (one mode switched off: Delta = (1/2 - L*)/K).
            delta = (0.5 - Lth) / K
            r = np.where(alive & ~window, err / (np.where(alive, delta, 1.0) / 100), 0.0)
            r = np.where(~alive & ~window, err / 1e-9, r)
            j = int(r.argmax())
            checks.append(Check(
                "[ReLU] best-of-seeds GD loss reaches the linear three-factor minimum (ReLU adds nothing): "
                "gap / (Delta/100), Delta = loss gap to the one-dead-mode critical point (gap/1e-9 past q_sp)",
                float(Lth[j]), float(Lbest[j]), float(r.max()), 1.0,
                f"sublinear convergence at kinks; worst gap {float(err[alive].max()):.1e}; "
                f"max ||grad L|| at best runs {float(gbest.max()):.1e}"))
            v = sub["nc1_H2"].values[i, best][alive]
            checks.append(Check("[ReLU] at the best run, NC1 of the post-ReLU features -> 0", 0.0, float(v.max()),
                                float(v.max()), 1e-6, "within-class variability decays geometrically (lam_H > 0)"))
    return checks


register(Experiment(
    name=f"{FAMILY}.extended_relu",
    family=FAMILY,
    claim="Extended UFM W2 sigma(W1 H) (Tirer & Bruna 2022), sigma = id or ReLU: the best GD end point over random "
          "inits reaches the three-factor closed-form minimum (quartic scale, first-order jump at q* = 2^(-4/3)); "
          "linear: collapsed orthogonal-frame features; ReLU reaches the same value and never beats it",
    paper="Tirer & Bruna 2022",
    grid=_ext_grid,
    config=_ext_config,
    simulate=_ext_sim,
    compare=_ext_compare,
    seeds=4,
))


# ------------------------------------------------------------------------------------------------------------------
# 7. Minority collapse in the cross-entropy UFM (Fang et al. 2021): measured cosine between minority classifiers
def _minority_ce_config(quick):
    return {"K_major": 2, "K_minor": 2, "n_major": 16, "d": 5, "lam": 0.005, "lr": 1.0,
            "steps": 6000 if quick else 20000, "scale": 1.0}


def _minority_ce_grid(quick):
    return Grid.product(R=[1.0, 2.0, 4.0, 8.0, 16.0] if quick else [1.0, 16 / 12, 2.0, 16 / 6, 4.0, 16 / 3, 8.0, 16.0])


def _minority_ce_sim(point, key, cfg):
    KA, KB, nA, d = cfg["K_major"], cfg["K_minor"], cfg["n_major"], cfg["d"]
    K = KA + KB
    labels = tm.class_labels([nA] * K)
    sizes = _minority_sizes(point["R"], cfg)
    slot = jnp.asarray(np.tile(np.arange(nA), K))
    w = (slot < sizes[jnp.asarray(labels)]).astype(float)
    lam = cfg["lam"]

    def loss(p):
        return tm.ce_loss(p, labels, lam, lam, 0.0, weights=w)

    p0 = tm.init_params(key, K, d, K * nA, scale=cfg["scale"], bias=False)
    res = tm.train_gd(loss, p0, cfg["lr"], cfg["steps"], save_every=cfg["steps"], observables=loss)
    p = res.final
    W = p["W"]
    wn = jnp.linalg.norm(W, axis=1)
    C = (W @ W.T) / (wn[:, None] * wn[None, :])
    mu, emin = _mu_and_min(tm.hessian_eigvals(loss, p))
    return {"w_norm": wn, "minority_cos": C[KA, KA + 1], "major_minor_cos": C[0, KA], "majority_cos": C[0, 1],
            "grad_norm": tm.grad_norm(loss, p), "mu": mu, "eig_min": emin, "diverged": res.diverged}


def _minority_ce_compare(ds, cfg):
    K = cfg["K_major"] + cfg["K_minor"]
    ok = ~ds["diverged"].values
    dist = ds["grad_norm"].values / ds["mu"].values
    checks = [Check("no GD run diverged", 0.0, float((~ok).sum()), float((~ok).sum()), 0.0, "lr below 2/L"),
              _converged(dist, ok, "CE imbalanced")]
    cos = ds["minority_cos"].values  # [R, seed]
    wn = float(ds["w_norm"].values.min())
    ctol = 10 * 2 * float(dist.max()) / wn + FLOOR  # cosine moves by <= 2 delta / min ||w_k||
    spread = float((cos.max(axis=1) - cos.min(axis=1)).max())
    checks.append(Check("CE imbalanced: all seeds reach the same minority-classifier cosine (unique minimiser)", 0.0,
                        spread, spread, 2 * ctol, f"2 x (10 x 2 ||grad L||/mu / min ||w_k||) = {2 * ctol:.1e}"))
    c1 = float(cos[0].mean())
    checks.append(Check("CE balanced (R = 1): minority classifiers at the simplex-ETF angle cos = -1/(K-1)",
                        -1.0 / (K - 1), c1, abs(c1 + 1.0 / (K - 1)), ctol, "Zhu et al. 2021 ETF minimiser"))
    m = cos.mean(axis=1)
    drops = int((np.diff(m) <= ctol).sum())
    checks.append(Check(f"CE imbalanced: minority-classifier cosine increases with R (measured {np.round(m, 4).tolist()};"
                        " count of non-increases)", 0.0, float(drops), float(drops), 0.0,
                        "minority collapse trend (Fang et al. 2021): cos -> 1 as R -> infinity"))
    return checks


register(Experiment(
    name=f"{FAMILY}.minority_collapse_ce",
    family=FAMILY,
    claim="Class-imbalanced cross-entropy UFM: the angle between minority classifiers shrinks monotonically with the "
          "imbalance ratio R, from the ETF value cos = -1/(K-1) at R = 1 (minority collapse, measured)",
    paper="Fang et al. 2021",
    grid=_minority_ce_grid,
    config=_minority_ce_config,
    simulate=_minority_ce_sim,
    compare=_minority_ce_compare,
    dims={"w_norm": ("k",)},
    seeds=2,
))


# ------------------------------------------------------------------------------------------------------------------
# 8. Central path (Han, Papyan & Donoho 2022): proximity of gradient flow to it, and renormalised dynamics on it
CP_RTOL = 1e-8


def _cp_config(quick):
    return {"K": 3, "d": 4, "N_prox": 10, "lam": 1e-3, "t_prox": 400.0, "n_prox": 81,
            "N_cp": 4, "t_cp_units": 40.0, "n_cp": 41}


def _cp_grid(quick):
    return Grid.product(scale=[0.3, 1.0] if quick else [0.3, 0.6, 1.0])


def _cp_coords(cfg):
    n_cp = cfg["K"] * cfg["N_cp"]
    return {"t": np.linspace(0.0, cfg["t_prox"], cfg["n_prox"]),
            "tc": np.linspace(0.0, cfg["t_cp_units"] * cfg["K"] * n_cp, cfg["n_cp"])}


def _cp_sim(point, key, cfg):
    K, d, lam = cfg["K"], cfg["d"], cfg["lam"]
    k1, k2 = jax.random.split(key)
    coords = _cp_coords(cfg)
    # (1) ordinary gradient flow of the full MSE UFM (W, b, H all trained), ridge lam on W and H, free bias
    labels = tm.class_labels([cfg["N_prox"]] * K)
    Y = tm.one_hot_targets(labels, K)

    def loss(p):
        return tm.mse_loss(p, Y, lam, lam, 0.0)

    def obs(p):
        g = jax.grad(loss)(p)
        return {"Wt": jnp.concatenate([p["W"], p["b"][:, None]], axis=1), "H": p["H"], "Hdot": -g["H"], "loss": loss(p)}

    p0 = tm.init_params(k1, K, d, K * cfg["N_prox"], scale=point["scale"])
    r1 = gradient_flow(negative_gradient(loss), p0, jnp.asarray(coords["t"]), observables=obs, rtol=CP_RTOL)
    # (2) continually renormalised gradient flow on the central path, from whitened features (Sigma_W = I)
    H0, lab_c = tm.renormalized_features(k2, K, cfg["N_cp"], d, mean_scale=point["scale"])
    Yc = tm.one_hot_targets(lab_c, K)

    def obs_c(H):
        sw = tm.within_class_cov(H, lab_c, K)
        nc = tm.nc_metrics(H, tm.least_squares_classifier(H, Yc)["W"], lab_c)
        return {"s": tm.snr_eigvals(H, lab_c, K), "loss_cp": tm.central_path_loss(H, Yc), "nc1": nc["nc1"],
                "swdev": jnp.max(jnp.abs(sw - jnp.eye(d)))}

    r2 = gradient_flow(tm.renormalized_central_path_field(lab_c, K), H0, jnp.asarray(coords["tc"]), args=Yc,
                       observables=obs_c, rtol=CP_RTOL)
    out = dict(r1.observables)
    out.update(r2.observables)
    out.update({"ok_prox": jnp.all(r1.valid) & ~r1.failed, "ok_cp": jnp.all(r2.valid) & ~r2.failed,
                "num_steps": r1.num_steps + r2.num_steps})
    return out


def _cp_proximity(Wt, H, Hdot, loss, ts, Y, lam):
    """Measured deviation D = Wt - Wt*(H), slaved prediction X = -D0, decomposition residual and the Groenwall bound
    ||E(t_{k+1})|| <= ||E(t_k)|| e^{-l dt} + (1 - e^{-l dt}) sup||Xdot|| / l (E = D + X, l = min eig A)."""
    T = len(ts)
    D, X, lmin, resid, B, B0 = (np.zeros((T,) + Wt.shape[1:]), np.zeros((T,) + Wt.shape[1:]), np.zeros(T),
                                np.zeros(T), np.zeros(T), np.zeros(T))
    for i in range(T):
        Ws, A = (np.asarray(v) for v in th.ridge_ls_classifier(H[i], Y, lam, 0.0))
        D[i] = Wt[i] - Ws
        X[i] = -np.asarray(th.adiabatic_deviation(H[i], Hdot[i], Y, lam, 0.0))
        lmin[i] = np.linalg.eigvalsh(A)[0]
        Rs = Ws @ np.vstack([H[i], np.ones((1, H.shape[2]))]) - Y
        Lstar = 0.5 * np.sum(Rs ** 2) / Y.shape[1] + 0.5 * lam * np.sum(Ws[:, :-1] ** 2) + 0.5 * lam * np.sum(H[i] ** 2)
        B[i] = 0.5 * np.trace(D[i] @ A @ D[i].T)
        B0[i] = 0.5 * np.trace(X[i] @ A @ X[i].T)
        resid[i] = abs(loss[i] - Lstar - B[i]) / loss[i]
    E = np.linalg.norm(D + X, axis=(1, 2))
    xdot = np.linalg.norm(np.gradient(X, ts, axis=0), axis=(1, 2))
    bound = np.zeros(T)
    bound[0] = E[0]
    for k in range(T - 1):
        lo, hi = max(k - 1, 0), min(k + 3, T)
        lam_k = lmin[lo:hi].min()
        sup = 2.0 * xdot[lo:hi].max()  # sampled sup of ||dX/dt|| (finite differences), safety factor 2
        decay = np.exp(-lam_k * (ts[k + 1] - ts[k]))
        bound[k + 1] = bound[k] * decay + (1 - decay) * sup / lam_k
    return {"D": np.linalg.norm(D, axis=(1, 2)), "X": np.linalg.norm(X, axis=(1, 2)), "E": E, "bound": bound,
            "resid": resid, "B": B, "B0": B0}


def _cp_compare(ds, cfg):
    K, lam = cfg["K"], cfg["lam"]
    Y = np.asarray(tm.one_hot_targets(tm.class_labels([cfg["N_prox"]] * K), K))
    ts, tc = ds["t"].values, ds["tc"].values
    n_cp = K * cfg["N_cp"]
    ok = ds["ok_prox"].values.astype(bool) & ds["ok_cp"].values.astype(bool)
    checks = [Check("central-path flows completed (no divergence / solver failure)", 1.0, float(ok.mean()),
                    float(1 - ok.mean()), 0.0, "fraction of (scale, seed) runs whose two diffrax solves finished")]
    worst = {"resid": 0.0, "gron": 0.0, "slave": [0.0, 0.0, 0.0, 0.0], "B": [0.0, 0.0, 0.0, 0.0],
             "s": [0.0, 0.0, 0.0], "loss": [0.0, 0.0, 0.0], "nc1": [0.0, 0.0, 0.0], "sw": 0.0, "ratio": [0.0, 0.0, 0.0],
             "shrink": []}
    for idx in np.ndindex(ok.shape):
        if not ok[idx]:
            continue
        sel = dict(zip(ds["ok_prox"].dims, idx))
        g = lambda v: ds[v].isel(sel).values  # noqa: E731
        pr = _cp_proximity(g("Wt"), g("H"), g("Hdot"), g("loss"), ts, Y, lam)
        worst["resid"] = max(worst["resid"], pr["resid"].max())
        worst["gron"] = max(worst["gron"], (pr["E"][1:] / pr["bound"][1:]).max())  # bound[0] = E[0] by definition
        rel = abs(pr["D"][-1] - pr["X"][-1]) / pr["D"][-1]
        if rel >= worst["slave"][2]:
            worst["slave"] = [pr["X"][-1], pr["D"][-1], rel, pr["bound"][-1] / pr["D"][-1]]
        relB = abs(pr["B"][-1] - pr["B0"][-1]) / pr["B"][-1]
        tolB = 2 * pr["bound"][-1] / pr["X"][-1] + (pr["bound"][-1] / pr["X"][-1]) ** 2
        if relB >= worst["B"][2]:
            worst["B"] = [pr["B0"][-1] / g("loss")[-1], pr["B"][-1] / g("loss")[-1], relB, tolB]
        worst["shrink"].append((pr["D"][-1] / pr["D"][0], (pr["X"][-1] + pr["bound"][-1]) / pr["D"][0]))
        # renormalised central path
        s = g("s")
        s_th = np.asarray(th.renormalized_snr(s[0], tc[:, None], K, n_cp))
        e_s = np.abs(s / s_th - 1).max()
        if e_s >= worst["s"][2]:
            worst["s"] = [s_th[-1, -1], s[-1, -1], e_s]
        l_th = np.asarray(th.central_path_loss_snr(s_th, K))
        e_l = np.abs(g("loss_cp") / l_th - 1).max()
        if e_l >= worst["loss"][2]:
            worst["loss"] = [l_th[-1], g("loss_cp")[-1], e_l]
        nc1_th = np.sum(1.0 / s_th, axis=1) / K
        e_n = np.abs(g("nc1") / nc1_th - 1).max()
        if e_n >= worst["nc1"][2]:
            worst["nc1"] = [nc1_th[-1], g("nc1")[-1], e_n]
        worst["sw"] = max(worst["sw"], g("swdev").max())
        rt, rs = s_th[-1, 0] / s_th[-1, -1], s[-1, 0] / s[-1, -1]
        if abs(rs / rt - 1) >= worst["ratio"][2]:
            worst["ratio"] = [rt, rs, abs(rs / rt - 1), s[0, 0] / s[0, -1]]
    tol_int = 100 * CP_RTOL
    shr = max(worst["shrink"], key=lambda x: x[0] / x[1])
    Xt, Dm, rel, tolr = worst["slave"]
    checks += [
        Check("decomposition L = L(W*(H), b*(H), H) + 1/2 tr(D A D^T) along gradient flow (max rel. residual)",
              0.0, worst["resid"], worst["resid"], 1e-9,
              "float64 rounding of the ridge solves (cond A < 1e3); W*, A from derivations, L from the simulation"),
        Check("||W - W*(H)|| below its Groenwall bound from t = 0 (max_{t > 0} ||E||/bound, E = D + X)", 1.0, worst["gron"],
              worst["gron"], 1.0, "bound propagated over save intervals with l = min eig A and a sampled sup "
              "||dX/dt|| (finite differences, safety factor 2); must be <= 1"),
        Check("slaved deviation: ||W - W*(H)|| at t_end vs adiabatic ||(dW*/dt) A^{-1}|| (worst run)", Xt, Dm, rel,
              tolr, "tolerance = Groenwall bound on ||E|| / ||D|| at t_end"),
        Check("term (B) / loss at t_end: measured vs 1/2 tr(X A X^T)/L (worst run)", worst["B"][0], worst["B"][1],
              worst["B"][2], worst["B"][3], "tolerance 2 b + b^2, b = bound/||X|| (from the bound on ||D - (-X)||)"),
        Check("distance to the central path shrinks: ||D(t_end)|| / ||D(0)|| <= (||X|| + bound)/||D(0)|| (worst run)",
              shr[1], shr[0], shr[0], shr[1], "W relaxes at rate >= min eig A while H moves O(1/n) slower"),
        Check("renormalised central path: SNR eigenvalues s_j(t) vs log s + 2s + s^2/2 = const + 2t/(K n) "
              "(max rel. error)", worst["s"][0], worst["s"][1], worst["s"][2], tol_int,
              "100 x diffrax rtol (global error of a smooth 40-step solve)"),
        Check("loss on the central path vs 1/(2K) sum 1/(1+s_j(t)) (closed-form s_j; max rel. error)",
              worst["loss"][0], worst["loss"][1], worst["loss"][2], tol_int, "100 x diffrax rtol"),
        Check("NC1 = tr(Sigma_W Sigma_B^+)/K vs sum_j 1/s_j(t) / K (max rel. error)", worst["nc1"][0],
              worst["nc1"][1], worst["nc1"][2], tol_int, "100 x diffrax rtol"),
        Check("SNR equalisation s_max/s_min at t_end (-> 1; initial ratio in note)", worst["ratio"][0],
              worst["ratio"][1], worst["ratio"][2], tol_int, f"initial ratio {worst['ratio'][3]:.3f}; 100 x rtol"),
        Check("renormalised flow stays on {Sigma_W = I} (max |Sigma_W - I|)", 0.0, worst["sw"], worst["sw"], tol_int,
              "projected field is tangent; drift is integration error <= 100 rtol"),
    ]
    return checks


register(Experiment(
    name=f"{FAMILY}.central_path",
    family=FAMILY,
    claim="MSE UFM central path: gradient flow keeps W within the slaved distance ||(dW*/dt) A^{-1}|| of the "
          "least-squares classifier W*(H) (exact decomposition L = L* + 1/2 tr(D A D^T)); on the renormalised central "
          "path the SNR eigenvalues follow log s + 2s + s^2/2 = const + 2t/(K n) (NC1 -> 0, equal SNR)",
    paper="Han, Papyan & Donoho 2022",
    grid=_cp_grid,
    config=_cp_config,
    simulate=_cp_sim,
    compare=_cp_compare,
    dims={"Wt": ("t", "k", "j"), "H": ("t", "f", "i"), "Hdot": ("t", "f", "i"), "loss": ("t",),
          "s": ("tc", "m"), "loss_cp": ("tc",), "nc1": ("tc",), "swdev": ("tc",)},
    coords=_cp_coords,
    seeds=2,
))
