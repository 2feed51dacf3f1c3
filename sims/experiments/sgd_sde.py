"""SGD as an SDE: Monte-Carlo ensembles (toymodels.sgd_sde) against closed forms (derivations.sgd_sde).

Every Monte-Carlo estimate carries its standard error over independent paths; checks are within K_SE standard
errors (family-wise, fixed seeds) plus, where a second discretisation enters, its derived bias.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from derivations import sgd_sde as theory
from sims.grid import Grid
from sims.registry import Check, Experiment, register
from toymodels import sgd_sde as sim

K_SE = 4.0  # Monte-Carlo checks pass within K_SE standard errors

# ---------------------------------------------------------------------------------------------------------- 1. OU
OU_H = [[1.0, 0.3, 0.0], [0.3, 3.0, -0.4], [0.0, -0.4, 0.6]]  # anisotropic, non-diagonal
OU_C = [[1.0, 0.4, 0.1], [0.4, 2.0, 0.0], [0.1, 0.0, 0.5]]  # gradient-noise covariance, not commuting with H


def _ou_grid(quick):
    if quick:
        return Grid.product(eta=[0.1, 0.4], batch=[1.0, 4.0])
    return Grid.product(eta=[0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5], batch=[1.0, 2.0, 4.0, 8.0, 16.0])


def _ou_config(quick):
    return {
        "H": OU_H, "C": OU_C,
        "n_paths": 300 if quick else 4000, "num_steps": 1200 if quick else 6000, "burn_in": 200 if quick else 1000,
        "sde_dt": 0.01 if quick else 0.002, "sde_steps": 1000 if quick else 5000, "sde_paths": 600 if quick else 20000,
    }


def _ou_simulate(point, key, config):
    H, C = np.asarray(config["H"]), np.asarray(config["C"])
    k1, k2 = jax.random.split(key)
    a = sim.quadratic_sgd_covariance(H, C, point["eta"], point["batch"], k1, n_paths=config["n_paths"],
                                     num_steps=config["num_steps"], burn_in=config["burn_in"])
    b = sim.quadratic_sde_covariance(H, C, point["eta"], point["batch"], k2, dt=config["sde_dt"],
                                     num_steps=config["sde_steps"], n_paths=config["sde_paths"])
    return {"sgd_cov": a["cov"], "sgd_sem": a["cov_sem"], "sde_cov": b["cov"], "sde_sem": b["cov_sem"]}


def ou_theory(eta, batch, config):
    """(discrete Lyapunov Sigma, continuous Lyapunov S, Euler-Maruyama stationary covariance at step dt)."""
    H, C = np.asarray(config["H"]), np.asarray(config["C"])
    Sd = np.asarray(theory.stationary_covariance(H, C, eta, batch, discrete=True))
    Sc = np.asarray(theory.stationary_covariance(H, C, eta, batch, discrete=False))
    # EM with step dt on dX = -HX dt + sqrt(eta C/B) dW is the SGD map with step dt and noise C/B' , B' = B dt/eta
    dt = config["sde_dt"]
    Sem = np.asarray(theory.stationary_covariance(H, C, dt, batch * dt / eta, discrete=True))
    return Sd, Sc, Sem


def _ou_compare(ds, config):
    checks = []
    ds = ds.isel(seed=0)
    for eta in ds.eta.values:
        for batch in ds.batch.values:
            p = ds.sel(eta=eta, batch=batch)
            Sd, Sc, Sem = ou_theory(float(eta), float(batch), config)
            mc, se = p.sgd_cov.values, p.sgd_sem.values
            z = np.abs(mc - Sd) / se
            i = np.unravel_index(np.argmax(z), z.shape)
            checks.append(Check(
                f"SGD stationary covariance = discrete Lyapunov (eta={eta:g}, B={batch:g})", float(Sd[i]),
                float(mc[i]), float(z[i]), K_SE,
                f"max over entries of |MC - Sigma|/SE; {config['n_paths']} paths x {config['num_steps'] - config['burn_in']} "
                f"steps time-averaged, SE over paths; tolerance {K_SE:g} SE"))
            # the SDE (continuous Lyapunov) is off by O(eta): measured relative gap of tr vs predicted
            gap_th = np.trace(Sd) / np.trace(Sc) - 1.0
            gap_mc = np.trace(mc) / np.trace(Sc) - 1.0
            gap_se = np.sum(np.diag(se)) / np.trace(Sc)  # sum of SEs bounds the SE of the trace
            checks.append(Check(
                f"O(eta) SDE error: tr(Sigma_MC)/tr(S) - 1 = tr(Sigma)/tr(S) - 1 (eta={eta:g}, B={batch:g})",
                float(gap_th), float(gap_mc), float(abs(gap_mc - gap_th)), K_SE * float(gap_se),
                f"tolerance {K_SE:g} x (sum of diagonal SEs)/tr(S)"))
            smc, sse = p.sde_cov.values, p.sde_sem.values
            err = np.abs(smc - Sc)
            tol = K_SE * sse + np.abs(Sem - Sc)
            i = np.unravel_index(np.argmax(err / tol), err.shape)
            checks.append(Check(
                f"SDE ensemble stationary covariance = continuous Lyapunov (eta={eta:g}, B={batch:g})",
                float(Sc[i]), float(smc[i]), float(err[i]), float(tol[i]),
                f"Euler-Maruyama dt={config['sde_dt']}, {config['sde_paths']} paths; tolerance {K_SE:g} SE "
                "(mean of per-save SEMs) + |EM stationary bias| (discrete Lyapunov at step dt)"))
    return checks


register(Experiment(
    name="sgd_sde.ou_covariance", family="sgd_sde",
    claim="near a quadratic minimum SGD is an OU process: stationary covariance = exact discrete Lyapunov; the SDE's "
          "continuous Lyapunov is off by O(eta)",
    paper="Mandt, Hoffman & Blei 2017; Li, Tai & E 2017",
    grid=_ou_grid, config=_ou_config, simulate=_ou_simulate, compare=_ou_compare,
    dims={k: ("i", "j") for k in ("sgd_cov", "sgd_sem", "sde_cov", "sde_sem")},
    chunk_size=64,
))


# ---------------------------------------------------------------------------------------------------------- 2. LS curves
def ls_problem(config, b):
    """Spectrum lam_i = i^-b, target power w*_i^2 lam_i = i^-a, rotated by a fixed random orthogonal U (numpy seed 0).
    Returns (lam (d,), c0 = (U^T w*)^2 (d,), Sigma (d,d), w_star (d,)); works on traced b (jax.numpy)."""
    d = config["d"]
    i = jnp.arange(1, d + 1, dtype=jnp.float64)
    lam = i ** (-b)
    c0 = i ** (-config["a"]) / lam
    U = np.linalg.qr(np.random.default_rng(0).standard_normal((d, d)))[0]
    Sigma = (U * lam) @ U.T
    w_star = U @ jnp.sqrt(c0)
    return lam, c0, Sigma, w_star


def _ls_grid(quick):
    if quick:
        return Grid.product(eta=[0.2], b=[1.0, 2.0])
    return Grid.product(eta=[0.05, 0.1, 0.2], b=[1.0, 1.5, 2.0])


def _ls_config(quick):
    return {"d": 8, "a": 1.0, "noise_std": 0.1, "batches": [1, 8] if quick else [1, 2, 4, 8, 16, 32],
            "n_paths": 1000 if quick else 20000, "num_steps": 100 if quick else 1000, "save_every": 5 if quick else 25}


def _ls_coords(config):
    return {"batch_size": np.asarray(config["batches"]),
            "step": np.arange(0, config["num_steps"] + 1, config["save_every"])}


def _ls_simulate(point, key, config):
    _, _, Sigma, w_star = ls_problem(config, point["b"])
    outs = [sim.least_squares_sgd(Sigma, w_star, config["noise_std"], point["eta"], B, jax.random.fold_in(key, B),
                                  n_paths=config["n_paths"], num_steps=config["num_steps"],
                                  save_every=config["save_every"]) for B in config["batches"]]
    return {k: jnp.stack([o[k] for o in outs]) for k in ("loss", "loss_sem", "frac_diverged")}


def ls_theory(eta, b, B, config):
    """(exact d^2 moment recursion, Bordelon-Pehlevan closed-form learning curve) at the saved steps."""
    lam, c0, Sigma, w_star = (np.asarray(v) for v in ls_problem(config, b))
    s2 = config["noise_std"] ** 2
    _, full = theory.moment_recursion(Sigma, np.outer(w_star, w_star), eta, B, s2, config["num_steps"],
                                      config["save_every"])
    steps = np.arange(0, config["num_steps"] + 1, config["save_every"])
    closed = theory.learning_curve(lam, c0, eta, B, s2, steps)
    return np.asarray(full), np.asarray(closed), float(theory.ms_spectral_radius(lam, eta, B))


def _ls_compare(ds, config):
    checks = []
    ds = ds.isel(seed=0)
    for eta in ds.eta.values:
        for b in ds.b.values:
            for B in ds.batch_size.values:
                p = ds.sel(eta=eta, b=b, batch_size=B)
                full, closed, rho = ls_theory(float(eta), float(b), int(B), config)
                tag = f"eta={eta:g}, b={b:g}, B={int(B)}"
                if rho >= 1.0:
                    checks.append(Check(f"learning curve {tag}: mean-square unstable (rho={rho:.3f}), skipped", 0, 0, 0,
                                        0, "outside claim 2; see sgd_sde.stability"))
                    continue
                checks.append(Check(f"closed-form learning curve = exact d^2 recursion ({tag})", float(full[-1]),
                                    float(closed[-1]), float(np.max(np.abs(full - closed) / full)), 1e-9,
                                    "theory vs theory (eigh closed form vs iterated recursion); rtol 1e-9"))
                mc, se = p.loss.values, p.loss_sem.values
                z = np.abs(mc[1:] - full[1:]) / se[1:]
                i = int(np.argmax(z)) + 1
                checks.append(Check(
                    f"MC SGD test loss = exact moment recursion ({tag})", float(full[i]), float(mc[i]),
                    float(z[i - 1]), K_SE,
                    f"max over saved steps of |MC - theory|/SE, {config['n_paths']} paths; tolerance {K_SE:g} SE"))
    return checks


register(Experiment(
    name="sgd_sde.learning_curves", family="sgd_sde",
    claim="exact second-moment recursion / Bordelon-Pehlevan learning curve of minibatch SGD on Gaussian least squares "
          "= Monte-Carlo SGD, for several spectra and batch sizes",
    paper="Bordelon & Pehlevan 2022",
    grid=_ls_grid, config=_ls_config, simulate=_ls_simulate, compare=_ls_compare, coords=_ls_coords,
    dims={k: ("batch_size", "step") for k in ("loss", "loss_sem", "frac_diverged")},
    chunk_size=64,
))


# ---------------------------------------------------------------------------------------------- 2b. optimal batch size
# Bordelon & Pehlevan 2022: at a fixed compute budget C = B t (samples seen = batch size x steps) the closed-form
# learning curve predicts the test loss after t = C/B steps as a function of B, and the compute-optimal batch size B*.
# Monte-Carlo SGD streams C samples per path and updates every B of them (toymodels.sgd_sde.least_squares_sgd_budget),
# so the batch size is a traced grid axis and the whole (eta, spectrum, B) grid is one vmapped program.
OB_BATCHES = [1, 2, 4, 8, 16, 32, 64]


def _ob_grid(quick):
    if quick:
        return Grid.product(eta=[0.3], b=[1.0, 1.5, 2.0], batch=[float(B) for B in OB_BATCHES])
    return Grid.product(eta=[0.2, 0.3, 0.4], b=[1.0, 1.25, 1.5, 1.75, 2.0], batch=[float(B) for B in OB_BATCHES])


def _ob_config(quick):
    return {"d": 8, "a": 1.0, "noise_std": 0.1, "budgets": [1024] if quick else [256, 1024, 4096],
            "n_paths": 2000 if quick else 10000}


def _ob_coords(config):
    return {"budget": np.asarray(config["budgets"])}


def _ob_simulate(point, key, config):
    _, _, Sigma, w_star = ls_problem(config, point["b"])
    outs = [sim.least_squares_sgd_budget(Sigma, w_star, config["noise_std"], point["eta"], point["batch"],
                                         jax.random.fold_in(key, C), n_paths=config["n_paths"], budget=C)
            for C in config["budgets"]]
    return {k: jnp.stack([o[k] for o in outs]) for k in ("loss", "loss_sem", "frac_diverged", "updates")}


def optimal_batch_theory(eta, b, C, config, batches):
    """Closed-form test loss at budget C for each batch size (inf if mean-square unstable), and B*."""
    lam, c0, _, _ = (np.asarray(v) for v in ls_problem(config, b))
    return theory.compute_optimal_batch(lam, c0, eta, config["noise_std"] ** 2, int(C),
                                        np.asarray(batches).astype(int))


def _ob_compare(ds, config):
    checks = []
    ds = ds.isel(seed=0)
    Bs = ds.batch.values.astype(int)
    for eta in ds.eta.values:
        for C in ds.budget.values:
            sets = {}
            for b in ds.b.values:
                p = ds.sel(eta=eta, b=b, budget=C)
                th, B_th = optimal_batch_theory(float(eta), float(b), int(C), config, Bs)
                mc, se, fd = p.loss.values, p.loss_sem.values, p.frac_diverged.values
                tag = f"eta={eta:g}, b={b:g}, C={int(C)}"
                bad_up = np.abs(p.updates.values - int(C) // Bs)
                if bad_up.max() > 0:
                    checks.append(Check(f"simulated SGD made exactly C/B updates ({tag})", 0, float(bad_up.max()),
                                        float(bad_up.max()), 0.0, "bookkeeping of the sample stream"))
                ok = np.isfinite(th) & (fd == 0)
                if not np.all(np.isfinite(th)):
                    checks.append(Check(f"optimal batch {tag}: B={Bs[~np.isfinite(th)].tolist()} mean-square unstable, "
                                        "excluded", 0, 0, 0, 0, "theory loss infinite; see sgd_sde.stability"))
                # (a) MC loss = closed form at every stable B
                z = np.where(ok, np.abs(mc - th) / se, 0.0)
                i = int(np.argmax(z))
                checks.append(Check(
                    f"fixed compute: MC test loss after C/B steps = closed-form learning curve at every B ({tag})",
                    float(th[i]), float(mc[i]), float(z[i]), K_SE,
                    f"max over B={Bs[ok].tolist()} of |MC - theory|/SE (worst B={int(Bs[i])}); {config['n_paths']} "
                    f"independent paths per B, each run for exactly C/B updates; tolerance {K_SE:g} SE"))
                # (b) the theory's B* is MC-optimal within K SE, and the MC argmin is theory-optimal within K SE
                mcm = np.where(ok, mc, np.inf)
                j_mc, j_th = int(np.argmin(mcm)), int(np.argmin(np.where(ok, th, np.inf)))
                s_pair = float(np.hypot(se[j_th], se[j_mc]))
                z_th = (mc[j_th] - mc[j_mc]) / s_pair
                within = [int(B) for B, m, s in zip(Bs, mcm, se) if m - mcm[j_mc] <= K_SE * np.hypot(s, se[j_mc])]
                sets[float(b)] = set(within)
                checks.append(Check(
                    f"compute-optimal batch size: theory B*={B_th} is MC-optimal within {K_SE:g} SE ({tag})",
                    float(B_th), float(Bs[j_mc]), float(z_th), K_SE,
                    f"error = (MC loss at theory B* - MC minimum)/SE of the difference; theory/simulated columns = "
                    f"B* (theory) and MC argmin; B within {K_SE:g} SE of the MC minimum: {within}"))
                z_mc = (th[j_mc] - th[j_th]) / s_pair
                checks.append(Check(
                    f"compute-optimal batch size: MC argmin B={int(Bs[j_mc])} is theory-optimal within {K_SE:g} SE ({tag})",
                    float(th[j_th]), float(th[j_mc]), float(z_mc), K_SE,
                    "error = (theory loss at the MC argmin - theory minimum)/SE of the MC difference: the MC could not "
                    "have told the two apart"))
                # non-vacuity: the MC resolves the optimum (the largest batch is worse than the MC minimum by > K SE)
                z_big = (mc[-1] - mc[j_mc]) / float(np.hypot(se[-1], se[j_mc]))
                checks.append(Check(
                    f"large batches lose at fixed compute: MC loss at B={int(Bs[-1])} above the MC minimum ({tag})",
                    float(th[-1] - th[j_th]), float(mc[-1] - mc[j_mc]), K_SE / max(float(z_big), 1e-300), 1.0,
                    f"error = {K_SE:g}/z, z = (MC(B={int(Bs[-1])}) - MC min)/SE = {z_big:.3g}: passes when the MC "
                    f"resolves the optimum by more than {K_SE:g} SE; theory/simulated = loss gaps"))
            # B* moves with the spectrum: the MC-optimal sets of the flattest and steepest spectra are disjoint
            b_lo, b_hi = min(sets), max(sets)
            if b_lo != b_hi:
                overlap = sorted(sets[b_lo] & sets[b_hi])
                B_lo = optimal_batch_theory(float(eta), b_lo, int(C), config, Bs)[1]
                B_hi = optimal_batch_theory(float(eta), b_hi, int(C), config, Bs)[1]
                checks.append(Check(
                    f"B* depends on the spectrum: MC-optimal batch sizes of b={b_lo:g} and b={b_hi:g} are disjoint "
                    f"(eta={eta:g}, C={int(C)})", float(B_lo / B_hi), float(min(sets[b_lo]) / max(sets[b_hi])),
                    float(len(overlap)), 0.0,
                    f"error = number of B within {K_SE:g} SE of the MC minimum for both spectra ({overlap}); "
                    f"theory = B*(b={b_lo:g})/B*(b={b_hi:g}), simulated = the smallest/largest ratio over those sets"))
    return checks


register(Experiment(
    name="sgd_sde.optimal_batch", family="sgd_sde",
    claim="at a fixed compute budget C = B t the closed-form learning curve gives the test loss vs batch size B of "
          "minibatch SGD on Gaussian least squares and its compute-optimal B*, which moves with the spectrum",
    paper="Bordelon & Pehlevan 2022",
    grid=_ob_grid, config=_ob_config, simulate=_ob_simulate, compare=_ob_compare, coords=_ob_coords,
    dims={k: ("budget",) for k in ("loss", "loss_sem", "frac_diverged", "updates")},
    chunk_size=64,
))


# ---------------------------------------------------------------------------------------------------------- 3. stability
def stab_lams(config):
    return np.linspace(config["lam_min"], config["lam_max"], config["d"])


def _stab_grid(quick):
    return Grid.product(eta_rel=np.linspace(0.7, 1.3, 9 if quick else 25))


def _stab_config(quick):
    return {"d": 16, "lam_min": 0.5, "lam_max": 1.5, "batches": [1, 8] if quick else [1, 2, 4, 8, 16, 32],
            "n_paths": 400 if quick else 4000, "num_steps": 100 if quick else 200, "save_every": 10}


def _stab_coords(config):
    return {"batch_size": np.asarray(config["batches"]),
            "step": np.arange(0, config["num_steps"] + 1, config["save_every"])}


def stab_etas(config, eta_rel, B):
    """The eta grid of batch size B: eta_rel times the predicted threshold (the grid is centred where the boundary is
    expected; the empirical boundary is measured from the simulation alone)."""
    return eta_rel * theory.ms_threshold(stab_lams(config), B)


def _stab_simulate(point, key, config):
    lam = stab_lams(config)
    Sigma = np.diag(lam)
    w_star = np.ones(config["d"]) / np.sqrt(config["d"])
    outs = []
    for B in config["batches"]:
        eta = stab_etas(config, point["eta_rel"], B)
        outs.append(sim.least_squares_sgd(Sigma, w_star, 0.0, eta, B, jax.random.fold_in(key, B),
                                          n_paths=config["n_paths"], num_steps=config["num_steps"],
                                          save_every=config["save_every"]))
    return {k: jnp.stack([o[k] for o in outs]) for k in ("loss", "loss_sem", "frac_diverged")}


def stability_table(ds, config):
    """Per batch size: eta grid, empirical mean-square growth rate per step (with SE) over the second half, rho(A)."""
    lam = stab_lams(config)
    out = {}
    ds = ds.isel(seed=0)
    K = config["num_steps"]
    for B in ds.batch_size.values:
        p = ds.sel(batch_size=B)
        eta = stab_etas(config, p.eta_rel.values, int(B))
        L, se = p.loss.values, p.loss_sem.values  # (eta, step)
        h = L.shape[1] // 2
        rate = (np.log(L[:, -1]) - np.log(L[:, h])) / (K - h * config["save_every"])
        rate_se = np.hypot(se[:, -1] / L[:, -1], se[:, h] / L[:, h]) / (K - h * config["save_every"])
        rho = np.array([float(theory.ms_spectral_radius(lam, e, int(B))) for e in eta])
        out[int(B)] = {"eta": eta, "rate": rate, "rate_se": rate_se, "rho": rho,
                       "eta_star": theory.ms_threshold(lam, int(B))}
    return out


def _crossing(x, y):
    """Linear interpolation of the first sign change of y (negative -> positive) along x; NaN if none."""
    s = np.where((y[:-1] < 0) & (y[1:] >= 0))[0]
    if len(s) == 0:
        return float("nan")
    i = s[0]
    return float(x[i] - y[i] * (x[i + 1] - x[i]) / (y[i + 1] - y[i]))


def _stab_compare(ds, config):
    checks = []
    for B, t in stability_table(ds, config).items():
        eta_emp = _crossing(t["eta"], t["rate"])
        spacing = float(np.diff(t["eta"]).max())
        checks.append(Check(
            f"mean-square stability threshold eta*(B={B}): rho(A)=1 vs empirical divergence boundary",
            t["eta_star"], eta_emp, abs(eta_emp - t["eta_star"]), spacing,
            f"empirical boundary = zero crossing of the MC growth rate of E[loss] over steps "
            f"{config['num_steps'] // 2}..{config['num_steps']} ({config['n_paths']} paths); tolerance one grid spacing"))
        resolved = np.abs(np.log(t["rho"]) - 0.0) > K_SE * t["rate_se"]
        agree = np.sign(t["rate"][resolved]) == np.sign(np.log(t["rho"][resolved]))
        checks.append(Check(
            f"sign of MC growth rate = sign of log rho(A) at resolved points (B={B})", float(resolved.sum()),
            float(agree.sum()), float((~agree).sum()), 0.0,
            f"points with |log rho| > {K_SE:g} x SE(rate); error = number of disagreements"))
    return checks


register(Experiment(
    name="sgd_sde.stability", family="sgd_sde",
    claim="SGD on Gaussian least squares diverges in mean square iff rho(A(eta,B)) > 1; predicted threshold vs empirical "
          "divergence boundary over (eta, B)",
    paper="Wu, Ma & E 2018; Ma & Ying 2021",
    grid=_stab_grid, config=_stab_config, simulate=_stab_simulate, compare=_stab_compare, coords=_stab_coords,
    dims={k: ("batch_size", "step") for k in ("loss", "loss_sem", "frac_diverged")},
    chunk_size=64,
))


# ---------------------------------------------------------------------------------------------------------- 4. SME
def _sme_grid(quick):
    ns = [4, 8, 16, 32, 64] if quick else [4, 8, 16, 32, 64, 128, 256]
    return Grid.product(eta=[1.0 / n for n in ns])


def _sme_config(quick):
    return {"x0": 2.0, "t_max": 1.0, "noise_scale": 1.0, "n_fine": 512 if quick else 2048,
            "n_paths": 8000 if quick else 100000, "fit_last": 4}


def _sme_simulate(point, key, config):
    return sim.sme_coupled(point["eta"], key, x0=config["x0"], t_max=config["t_max"], n_fine=config["n_fine"],
                           n_paths=config["n_paths"], noise_scale=config["noise_scale"])


def weak_slope(eta, err, se):
    """Weighted fit log|err| = q + p log eta + r eta (r absorbs the next order of the weak expansion); returns (p, SE p)."""
    y = np.log(np.abs(err))
    sy = se / np.abs(err)
    X = np.stack([np.ones_like(eta), np.log(eta), eta], axis=1)
    W = 1.0 / sy**2
    cov = np.linalg.inv(X.T @ (X * W[:, None]))
    beta = cov @ (X.T @ (W * y))
    return float(beta[1]), float(np.sqrt(cov[1, 1]))


def _sme_compare(ds, config):
    ds = ds.isel(seed=0)
    eta = ds.eta.values
    n = config["fit_last"]
    idx = np.argsort(eta)[:n]
    checks = []
    for order, key in ((1, "err1"), (2, "err2")):
        err, se = ds[key].values, ds[key + "_sem"].values
        p, sp_ = weak_slope(eta[idx], err[idx], se[idx])
        checks.append(Check(
            f"order-{order} SME: weak error |E x_k^2 - E X_(k eta)^2| ~ eta^{order} (slope on the {n} smallest eta)",
            float(order), p, abs(p - order), K_SE * sp_,
            f"weighted fit log|err| = q + p log eta + r eta; tolerance {K_SE:g} x SE(p); {config['n_paths']} paths, "
            "common random numbers; SDE by Euler-Maruyama h, 2h + Richardson"))
    e1, s1, e2, s2 = (ds[k].values for k in ("err1", "err1_sem", "err2", "err2_sem"))
    for i in idx:
        checks.append(Check(
            f"first-order correction improves the weak error (eta={eta[i]:g})", 0.0, float(abs(e2[i]) - abs(e1[i])),
            float(abs(e2[i]) - abs(e1[i]) + K_SE * np.hypot(s1[i], s2[i])), 0.0,
            f"passes when |err2| + {K_SE:g} SE < |err1|"))
    return checks


register(Experiment(
    name="sgd_sde.sme_weak_error", family="sgd_sde",
    claim="stochastic modified equations: SGD vs its SDE has weak error O(eta); the order-2 drift correction "
          "-(eta/4) grad |grad f|^2 makes it O(eta^2)",
    paper="Li, Tai & E 2017",
    grid=_sme_grid, config=_sme_config, simulate=_sme_simulate, compare=_sme_compare,
    chunk_size=64,
))


# ---------------------------------------------------------------------------------------------------------- 5. sqrt rule
def _sqrt_grid(quick):
    return Grid.product(rule=[0, 1])  # 0: square-root rule, 1: linear rule


def _sqrt_config(quick):
    return {"h": [1.0, 4.0], "x0": [1.0, 1.0], "eta": 0.02, "noise_std": 50.0, "c2": 1.0, "c1": 4.0, "eps": 5.0,
            "t_max": 1.5 if quick else 3.0, "kappas": [1, 4, 16] if quick else [1, 2, 4, 8, 16],
            "n_saves": 10 if quick else 20, "n_paths": 500 if quick else 10000}


def _sqrt_steps(config):
    K = int(round(config["t_max"] / config["eta"] ** 2))
    unit = max(config["kappas"]) * config["n_saves"]
    return K - K % unit


def _sqrt_coords(config):
    K = _sqrt_steps(config)
    return {"kappa": np.asarray(config["kappas"]),
            "examples": np.arange(0, K + 1, K // config["n_saves"]),  # examples seen / base batch size
            }


def _sqrt_simulate(point, key, config):
    h, x0 = np.asarray(config["h"]), np.asarray(config["x0"])
    eta0, c1, c2, eps0, s = config["eta"], config["c1"], config["c2"], config["eps"], config["noise_std"]
    K = _sqrt_steps(config)
    sqrt_rule = point["rule"] == 0
    out = {}
    for kind in ("rmsprop", "adam"):
        ls, ses = [], []
        for kap in config["kappas"]:
            e_s, omb_s, ep_s = theory.sqrt_scaling(kap, eta0, c2 * eta0**2, eps0)
            e_l, omb_l, ep_l = theory.linear_scaling(kap, eta0, c2 * eta0**2, eps0)
            e = jnp.where(sqrt_rule, e_s, e_l)
            omb = jnp.where(sqrt_rule, omb_s, omb_l)
            ep = jnp.where(sqrt_rule, ep_s, ep_l)
            omb1 = jnp.where(sqrt_rule, kap * c1 * eta0**2, c1 * eta0**2)
            n = K // kap
            r = sim.adaptive_noisy_quadratic(
                kind, h, s, e, omb, ep, float(kap), jax.random.fold_in(key, kap), n_paths=config["n_paths"],
                num_steps=n, save_every=n // config["n_saves"], x0=x0, one_minus_beta1=omb1 if kind == "adam" else None,
                v0=s**2 / kap)
            ls.append(r["loss"])
            ses.append(r["loss_sem"])
        out[f"{kind}_loss"], out[f"{kind}_sem"] = jnp.stack(ls), jnp.stack(ses)
    return out


def rmsprop_sde_curve(config):
    """Malladi et al. RMSprop SDE closed form at the saves: t = (examples/B) * eta^2, sigma0 = noise_std * eta,
    eps0 = eps * eta (base batch size 1)."""
    x = _sqrt_coords(config)["examples"]
    eta = config["eta"]
    return np.asarray(theory.rmsprop_sde_loss(np.asarray(config["h"]), np.asarray(config["x0"]),
                                              config["noise_std"] * eta, config["eps"] * eta, x * eta**2))


def rmsprop_frozen_v_curve(config, kappa):
    """E[loss] of the discrete RMSprop map with v frozen at its noise value sigma^2 (an exact linear recursion):
    m' = (1 - a dt)^2 m + s^2 dt, dt = kappa eta^2 per step; its gap to the SDE is the time-discretisation error."""
    eta, h = config["eta"], np.asarray(config["h"])
    sigma0, eps0 = config["noise_std"] * eta, config["eps"] * eta
    a, s = h / (sigma0 + eps0), sigma0 / (sigma0 + eps0)
    dt = kappa * eta**2
    steps = _sqrt_coords(config)["examples"] // kappa
    m = np.asarray(config["x0"]) ** 2
    out, k = [], 0
    for target in steps:
        while k < target:
            m = (1 - a * dt) ** 2 * m + s**2 * dt
            k += 1
        out.append(0.5 * np.sum(h * m))
    return np.array(out)


def adam_sde_curve(config):
    """Malladi et al. Adam SDE at the saves (c1 = (1-beta1)/eta^2; c2 drops out for isotropic noise and v_0 = 0)."""
    x = _sqrt_coords(config)["examples"]
    eta = config["eta"]
    return theory.adam_sde_loss(config["h"], config["x0"], config["noise_std"] * eta, config["eps"] * eta,
                                config["c1"], x * eta**2)


def adam_frozen_v_curve(config, kappa):
    """E[loss] of discrete Adam with the bias-corrected v_hat frozen at sigma^2 (exact linear second-moment recursion of
    x' = x - eta m_hat/(sigma + eps), m' = beta1 m + (1-beta1)(h x + sigma z)); eta etc. under the sqrt rule."""
    e, _, ep = theory.sqrt_scaling(kappa, config["eta"], config["c2"] * config["eta"] ** 2, config["eps"])
    omb1 = kappa * config["c1"] * config["eta"] ** 2
    sig = config["noise_std"] / np.sqrt(kappa)
    h = np.asarray(config["h"])
    xx, xm, mm = np.asarray(config["x0"]) ** 2, np.zeros_like(h), np.zeros_like(h)
    steps = _sqrt_coords(config)["examples"] // kappa
    out, k = [], 0
    for target in steps:
        while k < target:
            b1 = 1 - omb1
            # m' = b1 m + omb1 (h x + sig z);  x' = x - a m'  with a = e / ((1 - b1^(k+1)) (sig + ep))
            a = e / ((1 - b1 ** (k + 1)) * (sig + ep))
            mm_n = b1**2 * mm + 2 * b1 * omb1 * h * xm + omb1**2 * (h**2 * xx + sig**2)
            xm_n = b1 * xm + omb1 * h * xx  # E[x m'] before the x update
            xx, xm, mm = xx - 2 * a * xm_n + a**2 * mm_n, xm_n - a * mm_n, mm_n
            k += 1
        out.append(0.5 * np.sum(h * xx))
    return np.array(out)


def _sqrt_compare(ds, config):
    ds = ds.isel(seed=0)
    checks = []
    L_sde = rmsprop_sde_curve(config)
    for kap in ds.kappa.values:
        L = ds["rmsprop_loss"].sel(rule=0, kappa=kap).values
        S = ds["rmsprop_sem"].sel(rule=0, kappa=kap).values
        bias = np.abs(rmsprop_frozen_v_curve(config, int(kap)) - L_sde)
        z = (np.abs(L[1:] - L_sde[1:]) - bias[1:]) / S[1:]
        i = int(np.argmax(z)) + 1
        checks.append(Check(
            f"rmsprop (sqrt rule, kappa={int(kap)}) E[loss] = RMSprop SDE closed form (Malladi et al.)",
            float(L_sde[i]), float(L[i]), float(z.max()), K_SE,
            f"max over saves of (|MC - SDE| - |frozen-v discrete map - SDE|)/SE; {config['n_paths']} paths; tolerance "
            f"{K_SE:g} SE (the subtracted term is the step-size discretisation error, max {bias.max():.2g})"))
    L_adam = adam_sde_curve(config)
    for kap in ds.kappa.values:
        L = ds["adam_loss"].sel(rule=0, kappa=kap).values
        S = ds["adam_sem"].sel(rule=0, kappa=kap).values
        bias = np.abs(adam_frozen_v_curve(config, int(kap)) - L_adam)
        z = (np.abs(L[1:] - L_adam[1:]) - bias[1:]) / S[1:]
        i = int(np.argmax(z)) + 1
        checks.append(Check(
            f"adam (sqrt rule, kappa={int(kap)}) E[loss] = Adam SDE (Malladi et al.; moment ODEs, scipy rtol 1e-10)",
            float(L_adam[i]), float(L[i]), float(z.max()), K_SE,
            f"max over saves of (|MC - SDE| - |frozen-v_hat discrete Adam - SDE|)/SE; {config['n_paths']} paths; "
            f"tolerance {K_SE:g} SE (subtracted step-size term max {bias.max():.2g})"))
    for kind in ("rmsprop", "adam"):
        for rule, name in ((0, "square-root"), (1, "linear")):
            L = ds[f"{kind}_loss"].sel(rule=rule).values  # (kappa, save)
            S = ds[f"{kind}_sem"].sel(rule=rule).values
            z = np.abs(L[1:, 1:] - L[0, 1:]) / np.hypot(S[1:, 1:], S[0, 1:])
            zmax = float(z.max())
            if rule == 0:
                checks.append(Check(
                    f"{kind}: E[loss] vs examples seen collapses for kappa={config['kappas']} under the {name} rule",
                    0.0, zmax, zmax, K_SE,
                    f"max over kappa>1 and saves of |L_kappa - L_1|/SE; {config['n_paths']} paths; tolerance {K_SE:g} SE "
                    "(the O(eta) SDE-approximation residual is below this resolution)"))
            else:
                checks.append(Check(
                    f"{kind}: curves do NOT collapse under the {name} rule (kappa={max(config['kappas'])} vs 1)",
                    K_SE, zmax, K_SE / max(zmax, 1e-300), 1.0,
                    f"error = {K_SE:g}/max z: passes when some kappa curve is more than {K_SE:g} SE from kappa=1"))
    return checks


register(Experiment(
    name="sgd_sde.sqrt_scaling", family="sgd_sde",
    claim="RMSprop/Adam (optax) on a noisy quadratic: E[loss] vs examples seen is invariant under the square-root "
          "scaling rule (Malladi et al. SDE constants fixed) and not under the linear rule",
    paper="Malladi, Lyu, Panigrahi & Arora 2022",
    grid=_sqrt_grid, config=_sqrt_config, simulate=_sqrt_simulate, compare=_sqrt_compare, coords=_sqrt_coords,
    dims={f"{k}_{v}": ("kappa", "examples") for k in ("rmsprop", "adam") for v in ("loss", "sem")},
    chunk_size=64,
))


# ---------------------------------------------------------------------------------------------------------- 6. escape
BM_SHIFT = 0.5825971579390106  # -zeta(1/2)/sqrt(2 pi): discrete monitoring shifts a boundary by this * sigma sqrt(dt)


def _esc_grid(quick):
    return Grid.product(r=[1.0, 2.0] if quick else [1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0])


def _esc_config(quick):
    # barrier dU = 0.1, width w = sqrt(0.1) -> curvature h = 6 dU / w^2 = 6 at the well and at the barrier
    return {"barrier": 0.1, "width": float(np.sqrt(0.1)), "batch": 1.0, "sde_dt": 1.0 / 600.0,
            "sde_steps": 12000 if quick else 150000, "sgd_steps": 2000 if quick else 25000,
            "n_paths": 1000 if quick else 4000, "x_exit_rel": 1.5}


def esc_params(config, r):
    """Temperature T = dU / r and the SGD step giving it with Hessian noise C = h: T = eta h / (2B)."""
    dU, w, B = config["barrier"], config["width"], config["batch"]
    h = 6.0 * dU / w**2
    T = dU / r
    return T, h, 2.0 * B * T / h


def _esc_simulate(point, key, config):
    T, h, eta = esc_params(config, point["r"])
    k1, k2 = jax.random.split(key)
    a = sim.escape_renewal(config["barrier"], config["width"], T, config["sde_dt"], k1, n_paths=config["n_paths"],
                           num_steps=config["sde_steps"], x_exit_rel=config["x_exit_rel"])
    # SGD x' = x - eta (U'(x) + sqrt(h/B) xi): Euler-Maruyama of the SDE with dt = eta and 2T = eta h / B
    b = sim.escape_renewal(config["barrier"], config["width"], T, eta, k2, n_paths=config["n_paths"],
                           num_steps=config["sgd_steps"], x_exit_rel=config["x_exit_rel"])
    return {"sde_tau": a["tau"], "sde_sem": a["tau_sem"], "sgd_tau": b["tau"], "sgd_sem": b["tau_sem"],
            "sgd_eta": jnp.asarray(eta)}


def escape_theory(config, r, dt):
    """(exact MFPT, Kramers, allowance for a step dt: monitoring shift + effective-temperature O(dt) shift)."""
    T, h, _ = esc_params(config, r)
    dU, w, xr = config["barrier"], config["width"], config["x_exit_rel"]
    exact = theory.exact_mfpt(dU, w, T, x_exit_rel=xr)
    kramers = float(theory.kramers_time(dU, w, T))
    shift = BM_SHIFT * np.sqrt(2 * T * dt) / w
    monitor = abs(theory.exact_mfpt(dU, w, T, x_exit_rel=xr + shift) - exact)
    # Euler-Maruyama at step dt samples the well with variance T/(h(1 - h dt/2)): T_eff = T/(1 - h dt/2)
    temp = exact * abs(np.expm1(-(dU / T) * (h * dt / 2)))
    return exact, kramers, monitor + temp


def _esc_compare(ds, config):
    ds = ds.isel(seed=0)
    checks = []
    for r in ds.r.values:
        p = ds.sel(r=r)
        T, h, eta = esc_params(config, float(r))
        for name, dt, tau, se, n_steps in (
                ("SDE (Euler-Maruyama)", config["sde_dt"], p.sde_tau, p.sde_sem, config["sde_steps"]),
                ("SGD with Hessian noise", eta, p.sgd_tau, p.sgd_sem, config["sgd_steps"])):
            exact, kramers, allow = escape_theory(config, float(r), dt)
            checks.append(Check(
                f"{name} mean escape time = exact MFPT (dU/T={r:g}, step {dt:.3g}, h*step={h * dt:.3g})", exact,
                float(tau), abs(float(tau) - exact), K_SE * float(se) + allow,
                f"renewal estimator over {config['n_paths']} paths; tolerance {K_SE:g} SE + discrete-step allowance "
                f"{allow:.3g} (boundary shift 0.5826 sqrt(2T dt) + temperature shift T/(1 - h dt/2)); "
                f"Kramers' asymptotic {kramers:.4g} is off by {kramers / exact - 1:+.1%}"))
            # tight: the exact mean escape time of the discrete chain itself (step dt, noise variance 2 T dt), as the
            # renewal estimator's expectation (sgd_sde.escape_batch's theory with B = 1, s = 2T/(dt h))
            est, chain, quad = _chain_estimator(config["barrier"], config["width"], dt, 1.0, 2 * T / (dt * h),
                                                config["x_exit_rel"], n_steps)
            jensen = float(tau) * float(se / tau) ** 2
            checks.append(Check(
                f"{name} mean escape time = exact MFPT of the discrete chain (dU/T={r:g}, h*step={h * dt:.3g})", est,
                float(tau), abs(float(tau) - est), K_SE * float(se) + quad + jensen,
                f"Nystrom MFPT of the chain {chain:.5g} (renewal-estimator expectation {est:.5g}); tolerance {K_SE:g} SE + "
                f"Nystrom error {quad:.2g} + ratio bias {jensen:.2g}; the discretisation bias vs the SDE is "
                f"{chain / exact - 1:+.2%} (allowance above: {allow / exact:.1%})"))
    return checks


def _chain_estimator(barrier, width, eta, batch, noise_scale, x_exit_rel, num_steps):
    """(renewal-estimator expectation, exact chain MFPT, Nystrom error) for the SGD chain on the cubic well."""
    n1, n2 = theory.sgd_chain_mfpt(barrier, width, eta, batch, noise_scale, x_exit_rel=x_exit_rel,
                                   points_per_sigma=16, moments=True)
    n1c = theory.sgd_chain_mfpt(barrier, width, eta, batch, noise_scale, x_exit_rel=x_exit_rel, points_per_sigma=8)
    return theory.renewal_tau_mean(num_steps, eta, n1, n2), eta * n1, abs(eta * n1 - n1c)


register(Experiment(
    name="sgd_sde.escape", family="sgd_sde",
    claim="mean escape time from a cubic well: SDE and SGD (Hessian noise, T = eta h/(2B)) vs the exact mean "
          "first-passage time; Kramers' law accuracy vs barrier/temperature",
    paper="Kramers 1940; Xie, Sato & Sugiyama 2021",
    grid=_esc_grid, config=_esc_config, simulate=_esc_simulate, compare=_esc_compare,
    chunk_size=64,
))


# ------------------------------------------------------------------------------- 6b. escape vs eta/B, batch, curvature
# Online minibatch SGD x' = x - eta (U'(x) + sqrt(s h/B) z) on the cubic well (barrier dU, well curvature h = 6 dU/w^2),
# Hessian-shaped gradient noise C = s h, effective temperature T = eta s h/(2B). Three families of points:
#   route "eta": B = 1, eta varied           (T spans a factor 16 through the step size),
#   route "B":   eta = eta_max, B varied     (the same temperatures through the batch size: larger h eta),
#   "curvature": B = 1, eta fixed, h varied  (fixed eta/B: flatter wells are colder, T ∝ h; Xie et al. 2021).
# Theory: the exact mean escape time of the SGD Markov chain itself (Nystrom, derivations.sgd_sde.sgd_chain_mfpt), the
# exact MFPT of the SDE at the same T (its difference from the chain is the discretisation bias), and Kramers' law.
ESC_ETA_CURV = 0.06  # step size of the curvature points (B = 1)


def esc_batch_points(quick):
    """[(B, eta, h, route)]: route "eta" (B=1), route "B" (eta = eta_max) and "curvature" (B=1, eta fixed)."""
    etas = [0.24, 0.06, 0.015] if quick else [0.24, 0.12, 0.06, 0.03, 0.015]
    batches = [4.0, 16.0] if quick else [2.0, 4.0, 8.0, 16.0]
    hs = [0.5, 2.0] if quick else [0.25, 0.5, 2.0, 4.0]
    pts = [(1.0, e, 1.0, "eta") for e in etas] + [(b, etas[0], 1.0, "B") for b in batches]
    return pts + [(1.0, ESC_ETA_CURV, h, "curvature") for h in hs]


def _escb_grid(quick):
    pts = esc_batch_points(quick)
    return Grid.zip(dim="point", batch=[p[0] for p in pts], eta=[p[1] for p in pts], curv=[p[2] for p in pts])


def _escb_config(quick):
    return {"barrier": 0.03, "noise_scale": 1.0, "x_exit_rel": 1.5,
            "n_paths": 1000 if quick else 4000, "num_steps": 25000 if quick else 100000}


def _escb_simulate(point, key, config):
    width = jnp.sqrt(6.0 * config["barrier"] / point["curv"])
    out = sim.sgd_escape_renewal(config["barrier"], width, point["eta"], point["batch"], key,
                                 noise_scale=config["noise_scale"], n_paths=config["n_paths"],
                                 num_steps=config["num_steps"], x_exit_rel=config["x_exit_rel"])
    return {"tau": out["tau"], "tau_sem": out["tau_sem"], "escapes": out["escapes"]}


def escape_batch_theory(config, batch, eta, h):
    """Theory at one point: dict with r = dU/T, the SGD chain's MFPT (and its Nystrom error), the renewal estimator's
    expectation over num_steps steps (renewal theorem: E n = N/mu + E N^2/(2 mu^2) + 1/(2 mu) - 1), the SDE's exact
    MFPT at T = eta s h/(2B), and Kramers' law."""
    dU, s, xr = config["barrier"], config["noise_scale"], config["x_exit_rel"]
    w = float(np.sqrt(6.0 * dU / h))
    T = eta * s * h / (2.0 * batch)
    est, chain, quad = _chain_estimator(dU, w, eta, batch, s, xr, config["num_steps"])
    return {"r": dU / T, "T": T, "h_eta": h * eta, "chain": chain, "estimator": est,
            "quad": quad, "sde": theory.exact_mfpt(dU, w, T, x_exit_rel=xr),
            "kramers": float(theory.kramers_time(dU, w, T))}


def _escb_compare(ds, config):
    ds = ds.isel(seed=0)
    P = config["n_paths"]
    rows = []
    for i in range(ds.sizes["point"]):
        p = ds.isel(point=i)
        B, eta, h = float(p.batch), float(p.eta), float(p.curv)
        th = escape_batch_theory(config, B, eta, h)
        rows.append((B, eta, h, th, float(p.tau), float(p.tau_sem)))
    checks = []
    for B, eta, h, th, tau, se in rows:
        where = f"B={B:g}, eta={eta:g}, h={h:g}: dU/T={th['r']:.3g}, h eta={th['h_eta']:.3g}"
        jensen = tau * (se / tau) ** 2  # E[1/mean(n)] - 1/E[n]: relative (SE/tau)^2
        checks.append(Check(
            f"SGD mean escape time = exact MFPT of the SGD chain ({where})", th["estimator"], tau,
            abs(tau - th["estimator"]), K_SE * se + th["quad"] + jensen,
            f"renewal estimator over {P} paths x {config['num_steps']} steps (theory: its expectation from the chain's "
            f"first two moments, chain MFPT {th['chain']:.5g}); tolerance {K_SE:g} SE + Nystrom error {th['quad']:.2g}"
            f" + ratio bias {jensen:.2g}"))
        bias = th["estimator"] - th["sde"]
        checks.append(Check(
            f"SGD mean escape time = exact SDE MFPT at T = eta h/(2B) up to the discretisation bias ({where})",
            th["sde"], tau, abs(tau - th["sde"]), K_SE * se + abs(bias) + th["quad"] + jensen,
            f"derived discretisation bias (SGD chain - SDE) {bias / th['sde']:+.2%}; tolerance {K_SE:g} SE + |bias| + "
            f"Nystrom error + ratio bias; "
            f"Kramers' asymptotic {th['kramers']:.4g} is off from the exact SDE MFPT by "
            f"{th['kramers'] / th['sde'] - 1:+.1%}"))
    # two routes to one temperature: same eta/B, different eta (route "eta" vs route "B")
    for i, (B1, e1, h1, t1, tau1, se1) in enumerate(rows):
        for B2, e2, h2, t2, tau2, se2 in rows[i + 1:]:
            if h1 == h2 == 1.0 and B1 == 1.0 and B2 > 1.0 and np.isclose(e1 / B1, e2 / B2):
                ratio = tau2 / tau1
                rse = ratio * np.hypot(se1 / tau1, se2 / tau2)
                checks.append(Check(
                    f"same T, two routes: tau(B={B2:g}, eta={e2:g}) / tau(B=1, eta={e1:g}) = chain ratio "
                    f"(dU/T={t1['r']:.3g})", t2["estimator"] / t1["estimator"], ratio,
                    abs(ratio - t2["estimator"] / t1["estimator"]),
                    K_SE * rse + ratio * (t1["quad"] / t1["chain"] + t2["quad"] / t2["chain"]),
                    f"eta/B alone fixes the SDE (ratio 1); the SGD chains differ at O(h eta) = {t1['h_eta']:.3g} vs "
                    f"{t2['h_eta']:.3g}; tolerance {K_SE:g} propagated SE"))
    # curvature at fixed eta/B: d log tau / d(1/h), weighted least squares, vs the chain (Kramers: 2 B dU/(eta s))
    cur = [(h, th, tau, se) for B, eta, h, th, tau, se in rows if B == 1.0 and eta == ESC_ETA_CURV]
    if len(cur) >= 2:
        x = np.array([1.0 / c[0] for c in cur])
        wts = np.array([(c[2] / c[3]) ** 2 for c in cur])  # 1 / var(log tau)
        X = np.stack([np.ones_like(x), x], 1)
        cov = np.linalg.inv(X.T @ (wts[:, None] * X))

        def slope(y):
            return float((cov @ X.T @ (wts * y))[1])

        s_sim = slope(np.log([c[2] for c in cur]))
        s_th = slope(np.log([c[1]["estimator"] for c in cur]))
        s_sde = slope(np.log([c[1]["sde"] for c in cur]))
        coef = (cov @ X.T * wts)[1]  # slope = coef . log(tau): propagate the theory's relative Nystrom errors
        quad = float(np.sum(np.abs(coef) * [c[1]["quad"] / c[1]["chain"] for c in cur]))
        s_kr = slope(np.log([c[1]["kramers"] for c in cur]))
        s_exp = 2.0 * config["barrier"] / (ESC_ETA_CURV * config["noise_scale"])
        checks.append(Check(
            "fixed eta/B, curvature h varied: slope d log tau / d(1/h) = chain theory (flat minima are kept longer)",
            s_th, s_sim, abs(s_sim - s_th), K_SE * float(np.sqrt(cov[1, 1])) + quad,
            f"weighted LS over h = {', '.join(f'{c[0]:g}' for c in cur)}; tolerance {K_SE:g} SE of the slope; exact "
            f"SDE slope {s_sde:.4g}; Kramers' law {s_kr:.4g}, of which the exponent 2 B dU/(eta s) (Xie et al.) gives "
            f"{s_exp:.4g} and the prefactor 1/h the rest"))
    return checks


register(Experiment(
    name="sgd_sde.escape_batch", family="sgd_sde",
    claim="escape from a cubic well by minibatch SGD with Hessian-shaped noise: mean escape time vs eta/B by two "
          "routes (eta at B = 1; B in {1, 4, 16} at fixed eta) and vs curvature, against the exact MFPT of the SGD "
          "chain and of the SDE at T = eta h/(2B), with Kramers' accuracy vs barrier/T",
    paper="Kramers 1940; Xie, Sato & Sugiyama 2021",
    grid=_escb_grid, config=_escb_config, simulate=_escb_simulate, compare=_escb_compare,
    dims={"tau": (), "tau_sem": (), "escapes": ()},
    chunk_size=64,
))
