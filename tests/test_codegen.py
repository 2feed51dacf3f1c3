"""sympy -> JAX codegen under jit, vmap and grad, against scipy/numpy; LaTeX; the identity checker."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special as ss
import sympy as sp

from derivations.codegen import Identity, check_identities, to_jax, to_latex

x, y = sp.symbols("x y", real=True)

CASES = [
    (sp.erf(x), ss.erf, lambda v: 2 / np.sqrt(np.pi) * np.exp(-(v**2)), np.linspace(-2, 2, 5)),
    (sp.erfc(x), ss.erfc, lambda v: -2 / np.sqrt(np.pi) * np.exp(-(v**2)), np.linspace(-2, 2, 5)),
    (sp.asinh(x), np.arcsinh, lambda v: 1 / np.sqrt(v**2 + 1), np.linspace(-2, 2, 5)),
    (sp.acosh(x), np.arccosh, lambda v: 1 / np.sqrt(v**2 - 1), np.linspace(1.5, 4, 5)),
    (sp.atanh(x), np.arctanh, lambda v: 1 / (1 - v**2), np.linspace(-0.9, 0.9, 5)),
]


@pytest.mark.parametrize("expr,ref,dref,xs", CASES, ids=[str(c[0]) for c in CASES])
def test_special_functions_jit_vmap_grad(expr, ref, dref, xs):
    f = to_jax(expr, [x])
    np.testing.assert_allclose(np.asarray(jax.jit(jax.vmap(f))(jnp.asarray(xs))), ref(xs), rtol=1e-13, atol=1e-15)
    g = jax.vmap(jax.grad(f))(jnp.asarray(xs))
    np.testing.assert_allclose(np.asarray(g), dref(xs), rtol=1e-12)


def test_piecewise_is_trace_safe():
    e = sp.Piecewise((x**2, x > 1), (sp.sin(x) * y, True))
    f = jax.jit(jax.vmap(to_jax(e, [x, y])))
    xs, ys = jnp.array([0.5, 2.0, -1.0]), jnp.array([3.0, 3.0, 2.0])
    np.testing.assert_allclose(np.asarray(f(xs, ys)), [np.sin(0.5) * 3, 4.0, np.sin(-1.0) * 2], rtol=1e-14)
    dfdx = jax.grad(to_jax(e, [x, y]))(2.0, 1.0)
    assert float(dfdx) == pytest.approx(4.0, rel=1e-14)


def test_latex_and_unsupported_function():
    assert to_latex(sp.exp(x) / 2, "u") == r"u = \frac{e^{x}}{2}"
    with pytest.raises(NotImplementedError, match="LambertW"):
        to_jax(sp.LambertW(x), [x])


def test_identity_checker_passes_zero_and_fails_nonzero():
    t = sp.symbols("t", positive=True)
    u = sp.exp(2 * t)
    ids = [
        Identity("ode", lambda: sp.diff(u, t) - 2 * u, "exp solves u' = 2u"),
        Identity("matrix", lambda: sp.Matrix([[sp.sin(x) ** 2 + sp.cos(x) ** 2 - 1, 0]]), "matrix of zeros"),
        Identity("wrong", lambda: sp.diff(u, t) - u, "deliberately false"),
        Identity("broken", lambda: 1 / 0, "raises"),
    ]
    res = {r.name: r for r in check_identities(ids, "test")}
    assert res["ode"].passed and res["matrix"].passed
    assert not res["wrong"].passed and "exp" in res["wrong"].residual
    assert not res["broken"].passed and res["broken"].residual.startswith("error")
