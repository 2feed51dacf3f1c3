# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # Saxe et al. (2014): sigmoidal learning in a two-layer linear network
#
# Whitened inputs, target correlation $\Sigma_{yx} = U\,\mathrm{diag}(s)\,V^T$, loss
# $\tfrac12\|\Sigma_{yx} - W_2 W_1\|_F^2$. From small balanced weights aligned with the singular vectors, each mode
# strength $u_\alpha = [U^T W_2 W_1 V]_{\alpha\alpha}$ obeys $\tau \dot u = 2u(s-u)$, solved by
# $u(t) = s e^{2st/\tau} / (e^{2st/\tau} - 1 + s/u_0)$.
# We integrate the full weight matrices with gradient flow and compare with that closed form.

# %%
import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp
import numpy as np

import derivations.deep_linear as th
import toymodels.deep_linear as dl

# %% [markdown]
# A random problem with three singular values, and a balanced aligned initialisation with $u_0 = 10^{-3}$
# (random hidden frame, so the hidden layer is not aligned with the coordinate axes).

# %%
s = jnp.array([3.0, 1.5, 0.75])
prob = dl.make_problem(s, n_in=5, n_out=4, seed=0)
weights0 = dl.init_balanced_aligned(prob, u0=1e-3, hidden=6, depth=2, seed=1)
ts = jnp.linspace(0.0, 10.0, 81)
res = dl.simulate_flow(prob, weights0, ts, observables=lambda ws: (dl.mode_strengths(ws, prob), dl.imbalance(ws)[0]))
u_sim = np.asarray(res.observables[0])  # (81, 3) mode strengths
C_sim = np.asarray(res.observables[1])  # (81, 6, 6) imbalance W1 W1^T - W2^T W2

# %% [markdown]
# The closed form for every mode, and the learning times $t_{1/2} = (\tau/2s)\ln(s/u_0 - 1)$.

# %%
u_theory = np.asarray(th.saxe_mode(np.asarray(ts)[:, None], np.asarray(s)[None, :], 1e-3))
err = np.max(np.abs(u_sim - u_theory) / np.asarray(s))
print(f"max |u_sim - u_theory| / s over the whole trajectory: {err:.2e}")
print("half-learning times:", np.round(np.asarray(th.learning_time(s, 1e-3)), 4))
assert not bool(res.diverged)
assert err < 1e-7  # integrator rtol 1e-10, global error <~ 1e3 rtol

# %% [markdown]
# The layers stay balanced: $W_1W_1^T - W_2^TW_2$ is conserved by gradient flow (here it starts at 0).

# %%
drift = float(np.max(np.abs(C_sim)))
print(f"max |C(t)|: {drift:.2e}")
assert drift < 1e-8

# %%
try:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3))
    for a in range(3):
        ax.plot(ts, u_theory[:, a], label=f"s = {float(s[a]):g}")
        ax.plot(ts[::3], u_sim[::3, a], "o", mfc="none", color=ax.lines[-1].get_color())
    ax.set_xlabel("t")
    ax.set_ylabel("mode strength")
    ax.legend()
except ImportError:
    pass
