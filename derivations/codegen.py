"""sympy -> JAX (lambdify with an explicit override table) and sympy -> LaTeX, plus the identity checker.

Every derivations module lists `IDENTITIES: list[Identity]`: expressions that must simplify to exactly 0
(ODE residuals of closed forms, time derivatives of invariants, stationarity of fixed points).
`check_identities` simplifies each and reports PASS/FAIL; `python -m sims derive` runs them all.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import jax.numpy as jnp
import jax.scipy.special as jsp
import sympy as sp
from sympy.printing.numpy import JaxPrinter

# Functions whose jax.numpy spelling differs from sympy's, or that lambdify's default printer gets wrong.
JAX_OVERRIDES: dict[str, Callable] = {
    "erf": jsp.erf,
    "erfc": jsp.erfc,
    "erfinv": jsp.erfinv,
    "asinh": jnp.arcsinh,
    "acosh": jnp.arccosh,
    "atanh": jnp.arctanh,
    "asin": jnp.arcsin,
    "acos": jnp.arccos,
    "atan": jnp.arctan,
    "atan2": jnp.arctan2,
    "gamma": jsp.gamma,
    "loggamma": jsp.gammaln,
    "polygamma": jsp.polygamma,
    "digamma": jsp.digamma,
    "LambertW": None,  # no jax equivalent: lambdify refuses it explicitly (see to_jax)
    "Heaviside": lambda x, h0=0.5: jnp.heaviside(x, h0),
    "sign": jnp.sign,
    "Abs": jnp.abs,
    "Min": jnp.minimum,
    "Max": jnp.maximum,
    "select": jnp.select,
    "log1p": jnp.log1p,
    "expm1": jnp.expm1,
}


class _OverridePrinter(JaxPrinter):
    """JaxPrinter that prints functions in JAX_OVERRIDES by bare name, resolved in the lambdify namespace."""

    def _print_Function(self, expr):
        name = expr.func.__name__
        if JAX_OVERRIDES.get(name) is not None:
            return f"{name}({', '.join(self._print(a) for a in expr.args)})"
        return super()._print_Function(expr)


for _name, _fn in JAX_OVERRIDES.items():
    if _fn is not None and _name not in ("select",):
        setattr(_OverridePrinter, f"_print_{_name}", _OverridePrinter._print_Function)


def to_jax(expr: sp.Expr | Sequence[sp.Expr], args: Sequence[sp.Symbol]) -> Callable:
    """Compile a sympy expression (or list of them) into a jit/vmap/grad-safe function of `args` (positional)."""
    exprs = expr if isinstance(expr, (list, tuple)) else [expr]
    for e in exprs:
        bad = {f.func.__name__ for f in sp.sympify(e).atoms(sp.Function)} & {
            k for k, v in JAX_OVERRIDES.items() if v is None
        }
        if bad:
            raise NotImplementedError(f"no JAX translation for {sorted(bad)}; add one to JAX_OVERRIDES")
    table = {k: v for k, v in JAX_OVERRIDES.items() if v is not None}
    # JaxPrinter prints Piecewise as jax.numpy.select (trace-safe); the table overrides special functions.
    return sp.lambdify(list(args), expr, modules=[table, "jax"], printer=_OverridePrinter, cse=True)


def to_latex(expr: sp.Expr, name: str | None = None, **kwargs) -> str:
    """LaTeX of `expr` (as `name = expr` when a left-hand side is given), via sympy's printer."""
    body = sp.latex(expr, **kwargs)
    return f"{name} = {body}" if name else body


@dataclass(frozen=True)
class Identity:
    """A symbolic statement `build() == 0` (scalar or Matrix), with its meaning and source."""

    name: str
    build: Callable[[], sp.Expr | sp.MatrixBase]
    description: str
    paper: str = ""
    simplify: Callable[[sp.Expr], sp.Expr] = field(default=sp.simplify)


@dataclass(frozen=True)
class IdentityResult:
    """Outcome of one identity check: the simplified residual (as a string) and whether it is exactly zero."""

    family: str
    name: str
    description: str
    passed: bool
    residual: str
    seconds: float


def _is_zero(residual, simplify) -> tuple[bool, str]:
    if isinstance(residual, sp.MatrixBase):
        entries = [simplify(sp.sympify(e)) for e in residual]
        nonzero = [e for e in entries if e != 0]
        return (not nonzero), ("0" if not nonzero else str(nonzero[0]))
    r = simplify(sp.sympify(residual))
    if r != 0:
        r2 = sp.simplify(sp.expand(sp.together(r)))
        r = r2
    return r == 0, str(r)


def check_identities(identities: Iterable[Identity], family: str = "") -> list[IdentityResult]:
    """Simplify every identity's residual and report whether it is exactly zero (errors count as FAIL)."""
    out = []
    for ident in identities:
        t0 = time.perf_counter()
        try:
            passed, residual = _is_zero(ident.build(), ident.simplify)
        except Exception as err:  # a broken derivation is a FAIL with the reason, not a crash of the checker
            passed, residual = False, f"error: {type(err).__name__}: {err}"
        out.append(
            IdentityResult(family, ident.name, ident.description, passed, residual, time.perf_counter() - t0)
        )
    return out
