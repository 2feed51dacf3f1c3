"""Generate `paper/generated/*.tex` from the checked sources: nothing in the paper's numbers or closed forms is typed.

- equations: every sympy expression a `derivations/<family>.py` module exports (its `PAPER_EQUATIONS`, or else its
  public module-level sympy objects), printed with `derivations.codegen.to_latex`;
- numbers and validation tables: the rows of `results/validation[-quick].json` (`python -m sims validate`);
- identity tables: the rows of `python -m sims derive --json` (default `results/derive.json`);
- figures: one `figure` environment per `figures.Figure`, pointing at `figures/out/<name>.pdf`.

Every number printed is wrapped as `\\vnum{<machine value>}{<typeset value>}` (and every count as `\\vcount{n}`) so
`tests/test_paper.py` can check each one against the validation results. A family with no rows, no identities, no
equations or no figures gets an explicit "not yet validated / not yet generated" box, never silence.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import pkgutil
import re
import sys
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

PAPER_DIR = Path(__file__).resolve().parent
ROOT = PAPER_DIR.parent
if str(ROOT) not in sys.path:  # `python paper/build.py` from a fresh clone
    sys.path.insert(0, str(ROOT))

from sims.registry import FAMILIES  # noqa: E402  (one list of families for the CLI and the paper)
FAMILY_TITLES = {
    "deep_linear": "Deep linear networks",
    "diagonal_linear": "Diagonal linear networks",
    "matrix_sensing": "Matrix sensing",
    "sgd_sde": "SGD as a stochastic differential equation",
    "byol": "BYOL, SimSiam and DirectPred",
    "neural_collapse": "Neural collapse in the unconstrained features model",
    "edge_of_stability": "Scalar networks at the edge of stability",
}
NUMBER_FIELDS = ("theory", "simulated", "error", "tolerance")
SIG = 4  # significant digits of a printed number (theory/simulated get 6, error/tolerance 3: SIG_FIELD)
MAX_EQ_CHARS = 4000
# Display names for sympy symbols whose Python-friendly names print misleadingly (presentation only).
DISPLAY_SYMBOLS = {"sigma2": r"\sigma^{2}", "lambda_d": r"\lambda_{\mathrm{d}}", "alpha_p": r"\alpha_{p}"}  # longer sympy LaTeX is listed as "too long to typeset", not printed

# --------------------------------------------------------------------------------------------------------------
# text and numbers

_UNICODE = {
    "α": r"$\alpha$", "β": r"$\beta$", "γ": r"$\gamma$", "δ": r"$\delta$", "ε": r"$\varepsilon$", "ζ": r"$\zeta$",
    "η": r"$\eta$", "θ": r"$\theta$", "κ": r"$\kappa$", "λ": r"$\lambda$", "μ": r"$\mu$", "ν": r"$\nu$",
    "ξ": r"$\xi$", "π": r"$\pi$", "ρ": r"$\rho$", "σ": r"$\sigma$", "τ": r"$\tau$", "φ": r"$\varphi$",
    "χ": r"$\chi$", "ψ": r"$\psi$", "ω": r"$\omega$", "Γ": r"$\Gamma$", "Δ": r"$\Delta$", "Θ": r"$\Theta$",
    "Λ": r"$\Lambda$", "Σ": r"$\Sigma$", "Φ": r"$\Phi$", "Ψ": r"$\Psi$", "Ω": r"$\Omega$",
    "ᵀ": r"$^{\top}$", "²": r"$^{2}$", "³": r"$^{3}$", "⁴": r"$^{4}$", "⁻": r"$^{-}$", "¹": r"$^{1}$",
    "₀": r"$_{0}$", "₁": r"$_{1}$", "₂": r"$_{2}$", "₃": r"$_{3}$", "ᵢ": r"$_{i}$", "ₖ": r"$_{k}$",
    "≤": r"$\le$", "≥": r"$\ge$", "≈": r"$\approx$", "≠": r"$\ne$", "≪": r"$\ll$", "≫": r"$\gg$",
    "±": r"$\pm$", "×": r"$\times$", "·": r"$\cdot$", "−": "-", "–": "--", "—": "---", "→": r"$\to$",
    "←": r"$\leftarrow$", "⇒": r"$\Rightarrow$", "⟺": r"$\Leftrightarrow$", "∞": r"$\infty$", "√": r"$\surd$",
    "∫": r"$\int$", "∑": r"$\sum$", "∂": r"$\partial$", "∇": r"$\nabla$", "‖": r"$\|$", "∈": r"$\in$",
    "∝": r"$\propto$", "∼": r"$\sim$", "⊤": r"$\top$", "†": r"$^{\dagger}$", "’": "'", "‘": "`", "“": "``",
    "”": "''", "…": r"\dots{}", "°": r"$^\circ$", "½": r"$\frac12$", "⟨": r"$\langle$", "⟩": r"$\rangle$",
    "ĥ": r"$\hat h$", "≻": r"$\succ$", "⪰": r"$\succeq$", "∘": r"$\circ$", "⊗": r"$\otimes$",
}
_ASCII = {
    "\\": r"\textbackslash{}", "{": r"\{", "}": r"\}", "$": r"\$", "&": r"\&", "#": r"\#", "^": r"\textasciicircum{}",
    "_": r"\_", "%": r"\%", "~": r"\textasciitilde{}", "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}",
    "[": "{[}", "]": "{]}",  # never an optional argument (a table row starting with "[" after \\)
}


def tex_escape(s) -> str:
    """Plain text (ASCII or common math unicode) -> LaTeX text that pdflatex can always typeset."""
    out = []
    for ch in str(s):
        if ch in _ASCII:
            out.append(_ASCII[ch])
        elif ord(ch) < 128:
            out.append(ch)
        elif ch in _UNICODE:
            out.append(_UNICODE[ch])
        else:
            plain = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
            out.append(tex_escape(plain) if plain else "?")
    return "".join(out)


def tex_name(s) -> str:
    """An identifier (snake_case) for a narrow column: escaped, breakable after underscores and dots."""
    return tex_escape(s).replace(r"\_", r"\_\allowbreak{}").replace(".", r".\allowbreak{}")


def tex_caption(s) -> str:
    """A caption that may contain `$...$` math: math spans pass through, text between them is escaped."""
    parts = str(s).split("$")
    if len(parts) % 2 == 0:  # unbalanced dollars: treat everything as text
        return tex_escape(s)
    return "".join(tex_escape(p) if i % 2 == 0 else f"${p}$" for i, p in enumerate(parts))


def as_float(x) -> float | None:
    """A JSON value as a float (None for anything that is not a number)."""
    if isinstance(x, bool) or x is None:
        return None
    if isinstance(x, (int, float)):
        return float(x)
    if isinstance(x, str):
        try:
            return float(x)
        except ValueError:
            return None
    return None


def machine_number(x: float) -> str:
    """The exact value behind a printed number (Python's shortest round-trip repr; 'nan', 'inf', '-inf')."""
    return repr(float(x))


SIG_FIELD = {"theory": 6, "simulated": 6, "error": 3, "tolerance": 3}


def vnum(x, sig: int = SIG) -> str:
    r"""`\vnum{exact value}{value typeset to sig significant digits}`; non-numbers become escaped text."""
    f = as_float(x)
    if f is None:
        return tex_escape("n/a" if x is None else x)
    m = machine_number(f)
    if math.isnan(f):
        typeset = r"\mathrm{NaN}"
    elif math.isinf(f):
        typeset = r"\infty" if f > 0 else r"-\infty"
    elif f == 0:
        typeset = "0"
    else:
        mant, _, exp = f"{f:.{sig - 1}e}".partition("e")
        e = int(exp)
        if -3 <= e < 4:
            typeset = f"{f:.{sig}g}"
        else:
            mant = mant.rstrip("0").rstrip(".") if "." in mant else mant
            typeset = rf"10^{{{e}}}" if mant == "1" else rf"{mant}\times 10^{{{e}}}"
    return rf"\vnum{{{m}}}{{{typeset}}}"


def vcount(n: int) -> str:
    return rf"\vcount{{{int(n)}}}"


def tex_path(path) -> str:
    """A file path for the text: relative to the repository when inside it, breakable at slashes."""
    p = Path(path).resolve()
    try:
        shown = str(p.relative_to(ROOT))
    except ValueError:
        shown = str(p)
    if re.fullmatch(r"[A-Za-z0-9_./+=:@-]+", shown):
        return rf"\nolinkurl{{{shown}}}"
    return rf"\texttt{{{tex_escape(shown)}}}"


def csname(*parts) -> str:
    """A `\\csname` key: any characters except braces and backslashes (they cannot occur in our names)."""
    return "@".join(str(p).replace("\\", "/").replace("{", "(").replace("}", ")") for p in parts)


def _def(key: str, body: str) -> str:
    return rf"\expandafter\def\csname {key}\endcsname{{{body}}}"


# --------------------------------------------------------------------------------------------------------------
# inputs


def load_json_rows(path) -> list[dict] | None:
    """Rows of a JSON list file, or None if it does not exist."""
    path = Path(path)
    if not path.exists():
        return None
    rows = json.loads(path.read_text())
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise ValueError(f"{path}: expected a JSON list of objects")
    return rows


@dataclass
class Equation:
    name: str
    latex: str | None
    problem: str = ""


def _sympy_equations(mod) -> list[tuple[str, object]]:
    import sympy as sp

    def usable(v):
        if isinstance(v, sp.MatrixBase):
            return True
        return isinstance(v, (sp.Expr, sp.Rel)) and not v.is_Atom

    hook = getattr(mod, "PAPER_EQUATIONS", None)
    if hook is not None:
        items = list(hook.items()) if isinstance(hook, dict) else list(hook)
        out = []
        for name, val in items:
            out.append((str(name), val() if callable(val) else val))
        return out
    out = []
    for name, val in vars(mod).items():
        if name.startswith("_"):
            continue
        if usable(val):
            out.append((name, val))
        elif isinstance(val, dict) and val and all(usable(v) for v in val.values()):
            out.extend((f"{name}_{k}", v) for k, v in val.items())
        elif isinstance(val, (tuple, list)) and val and all(usable(v) and not isinstance(v, sp.MatrixBase) for v in val):
            out.append((name, sp.Matrix(list(val))))  # e.g. a system of ODE right-hand sides, as a column
    return out


def family_equations(family: str) -> tuple[list[Equation], str]:
    """The family's sympy closed forms as LaTeX (via codegen.to_latex), and a note if the module is unusable."""
    try:
        mod = importlib.import_module(f"derivations.{family}")
    except ModuleNotFoundError as err:
        if err.name == f"derivations.{family}":
            return [], f"derivations/{family}.py does not exist yet"
        return [], f"derivations/{family}.py cannot be imported: {err}"
    except Exception as err:  # a broken module is reported in the paper, not a crashed build
        return [], f"derivations/{family}.py cannot be imported: {type(err).__name__}: {err}"
    from derivations.codegen import to_latex

    eqs = []
    try:
        found = _sympy_equations(mod)
    except Exception as err:
        return [], f"derivations.{family}.PAPER_EQUATIONS failed: {type(err).__name__}: {err}"
    for name, expr in found:
        try:
            names = {sym: DISPLAY_SYMBOLS[sym.name] for sym in getattr(expr, "free_symbols", ())
                     if getattr(sym, "name", None) in DISPLAY_SYMBOLS}
            body = to_latex(expr, symbol_names=names) if names else to_latex(expr)
        except Exception as err:
            eqs.append(Equation(name, None, f"to_latex failed: {type(err).__name__}"))
            continue
        if len(body) > MAX_EQ_CHARS:
            eqs.append(Equation(name, None, f"too long to typeset ({len(body)} characters of LaTeX)"))
        else:
            eqs.append(Equation(name, body))
    note = "" if eqs else f"derivations/{family}.py exports no module-level sympy expressions (no PAPER_EQUATIONS)"
    return eqs, note


@dataclass
class FigureInfo:
    name: str
    family: str
    experiments: tuple = ()
    caption: str = ""
    problem: str = ""


def discover_figures() -> tuple[list[FigureInfo], list[str]]:
    """Every figures/<name>.py FIGURE (each module imported on its own, so one broken module breaks nothing else)."""
    import figures
    from figures import Figure

    infos, problems = [], []
    for info in pkgutil.iter_modules(figures.__path__):
        if info.name in {"style", "build", "__main__"} or info.name.startswith("_"):
            continue
        try:
            mod = importlib.import_module(f"figures.{info.name}")
        except Exception as err:
            msg = f"figures/{info.name}.py cannot be imported: {type(err).__name__}: {err}"
            problems.append(msg)
            fam = next((f for f in FAMILIES if info.name.startswith(f)), None)
            if fam is not None:  # shown in its family's section as a missing figure, with the reason
                infos.append(FigureInfo(info.name, fam, (), "", problem=msg))
            continue
        fig = getattr(mod, "FIGURE", None)
        if isinstance(fig, Figure):
            exps = tuple(fig.experiments)
            fam = exps[0].split(".")[0] if exps else fig.name.split("_")[0]
            if fam not in FAMILIES:
                fam = next((f for f in FAMILIES if fig.name.startswith(f)), fam)
            infos.append(FigureInfo(fig.name, fam, exps, fig.caption or ""))
    infos.sort(key=lambda f: f.name)
    return infos, problems


# --------------------------------------------------------------------------------------------------------------
# writers


def _placeholder(what: str, why: str) -> str:
    return rf"\notyet{{{tex_escape(what)}}}{{{tex_escape(why)}}}" + "\n"


def validation_table(family: str, rows: list[dict], source: str, quick: bool) -> str:
    """A longtable of the family's checks: claim (with its tolerance note), theory, simulated, error, tol, status."""
    mode = "quick" if quick else "full"
    lines = [
        r"\begin{footnotesize}\setlength{\tabcolsep}{4pt}",
        r"\begin{longtable}{@{}>{\raggedright\arraybackslash}p{0.38\linewidth}rrrrc@{}}",
        rf"\caption[Validation: {tex_escape(family)}]{{Theory vs simulation for {tex_escape(FAMILY_TITLES.get(family, family))} ({mode} grids; "
        rf"from {source}). A check passes when error $\le$ tolerance.}}"
        rf"\label{{tab:{family}-validation}}\\",
        r"\toprule claim & theory & simulated & error & tolerance & status\\ \midrule\endfirsthead",
        r"\toprule claim & theory & simulated & error & tolerance & status\\ \midrule\endhead",
        r"\bottomrule\endlastfoot",
    ]
    by_exp: dict[str, list[dict]] = {}
    for r in rows:
        by_exp.setdefault(str(r.get("experiment", "?")), []).append(r)
    first = True
    for exp, rs in by_exp.items():
        paper = rs[0].get("paper") or ""
        if not first:
            lines.append(r"\midrule")
        first = False
        lines.append(
            rf"\multicolumn{{6}}{{@{{}}>{{\raggedright\arraybackslash}}p{{\linewidth}}@{{}}}}{{\textbf{{\texttt{{{tex_name(exp)}}}}}"
            + (rf" \quad ({tex_escape(paper)})" if paper else "")
            + r"}\\*"
        )
        for r in rs:
            note = r.get("note") or ""
            claim = tex_escape(r.get("claim", ""))
            if note:
                claim += rf"\newline{{\scriptsize\itshape {tex_escape(note)}}}"
            status = str(r.get("status", "?"))
            status_tex = r"\pass" if status == "PASS" else (r"\fail" if status == "FAIL" else tex_escape(status))
            cells = [claim] + [f"${vnum(r.get(k), SIG_FIELD[k])}$" if as_float(r.get(k)) is not None else vnum(r.get(k))
                               for k in NUMBER_FIELDS] + [status_tex]
            lines.append(" & ".join(cells) + r"\\")
    lines += [r"\end{longtable}", r"\end{footnotesize}"]
    return "\n".join(lines) + "\n"


def family_summary(family: str, rows: list[dict], quick: bool) -> str:
    """One generated paragraph: how many checks pass, and the check closest to (or furthest past) its tolerance."""
    n = len(rows)
    n_pass = sum(r.get("status") == "PASS" for r in rows)
    n_exp = len({r.get("experiment") for r in rows})
    mode = "quick" if quick else "full"
    text = (rf"In the {mode} validation, {vcount(n_pass)} of {vcount(n)} theory-vs-simulation checks "
            rf"of {vcount(n_exp)} experiments pass (Table~\ref{{tab:{family}-validation}}).")

    def ratio(r):
        e, t = as_float(r.get("error")), as_float(r.get("tolerance"))
        if e is None or t is None or not math.isfinite(e):
            return math.inf
        return e / t if t > 0 else (math.inf if e > 0 else 0.0)

    if rows:
        worst = max(rows, key=ratio)
        text += (rf" The check closest to its tolerance is ``{tex_escape(worst.get('claim', ''))}'' "
                 rf"(\texttt{{{tex_name(worst.get('experiment', ''))}}}): theory ${vnum(worst.get('theory'), SIG_FIELD['theory'])}$, "
                 rf"simulation ${vnum(worst.get('simulated'), SIG_FIELD['simulated'])}$, error ${vnum(worst.get('error'), SIG_FIELD['error'])}$ against a "
                 rf"tolerance of ${vnum(worst.get('tolerance'), SIG_FIELD['tolerance'])}$.")
    fails = [r for r in rows if r.get("status") != "PASS"]
    if fails:
        text += rf" \textbf{{Failing checks:}} " + "; ".join(
            rf"\texttt{{{tex_name(r.get('experiment', ''))}}}: {tex_escape(r.get('claim', ''))}" for r in fails) + "."
    return text + "\n"


def number_macros(rows: list[dict]) -> str:
    r"""`\val{experiment}{i}{field}` definitions for every row (i = index of the check within its experiment)."""
    lines = ["% \\val{experiment}{index}{theory|simulated|error|tolerance|status|claim} for prose"]
    counter: dict[str, int] = {}
    for r in rows:
        exp = str(r.get("experiment", "?"))
        i = counter.get(exp, 0)
        counter[exp] = i + 1
        for k in NUMBER_FIELDS:
            lines.append(_def(csname("val", exp, i, k), f"${vnum(r.get(k), SIG_FIELD[k])}$"))
        lines.append(_def(csname("val", exp, i, "status"), tex_escape(r.get("status", "?"))))
        lines.append(_def(csname("val", exp, i, "claim"), tex_escape(r.get("claim", ""))))
    return "\n".join(lines) + "\n"


def figure_shown(f: FigureInfo, figures_dir: Path, failures: dict) -> bool:
    """Whether the paper includes the figure's PDF: it exists, and this build neither failed to draw nor import it."""
    return (Path(figures_dir) / f"{f.name}.pdf").exists() and not f.problem and f.name not in failures


def overview_table(rows: list[dict], idents: list[dict], figs: list, figures_dir: Path, quick: bool,
                   failures: dict) -> str:
    """One row per family: experiments, checks passed / run, identities passed / checked, figures drawn / defined."""
    lines = [
        r"\begin{table}[tbp]\centering\small",
        rf"\caption[Overview]{{What is validated, per family ({'quick' if quick else 'full'} grids): experiments, "
        r"theory-vs-simulation checks passed / run, sympy identities that simplify to zero / checked, and figures "
        r"drawn / defined.}\label{tab:overview}",
        r"\begin{tabular}{@{}lrrrr@{}}",
        r"\toprule family & experiments & checks & identities & figures\\ \midrule",
    ]
    for fam in FAMILIES:
        fr = [r for r in rows if r.get("family") == fam]
        fi = [r for r in idents if r.get("family") == fam]
        ff = [f for f in figs if f.family == fam]
        drawn = sum(figure_shown(f, figures_dir, failures) for f in ff)
        n_exp = len({r.get("experiment") for r in fr})
        n_pass = sum(r.get("status") == "PASS" for r in fr)
        n_ipass = sum(bool(r.get("passed")) for r in fi)
        lines.append(rf"\hyperref[sec:{fam}]{{{tex_escape(FAMILY_TITLES[fam])}}} & {vcount(n_exp)} & "
                     rf"{vcount(n_pass)}/{vcount(len(fr))} & {vcount(n_ipass)}/{vcount(len(fi))} & "
                     rf"{vcount(drawn)}/{vcount(len(ff))}\\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def identity_table(family: str, idents: list[dict]) -> str:
    n_pass = sum(bool(r.get("passed")) for r in idents)
    lines = [
        rf"All {vcount(len(idents))} symbolic identities of \texttt{{derivations/{tex_escape(family)}.py}} were simplified by sympy, "
        rf"and {vcount(n_pass)} of them reduce exactly to zero (Table~\ref{{tab:{family}-identities}}).",
        r"\begin{small}",
        r"\begin{longtable}{@{}>{\raggedright\arraybackslash}p{0.28\linewidth}>{\raggedright\arraybackslash}p{0.58\linewidth}c@{}}",
        rf"\caption[Identities: {tex_escape(family)}]{{Sympy identities of {tex_escape(FAMILY_TITLES.get(family, family))}: each residual must "
        rf"simplify to exactly $0$ (\texttt{{python -m sims derive}}).}}\label{{tab:{family}-identities}}\\",
        r"\toprule identity & statement & status\\ \midrule\endfirsthead",
        r"\toprule identity & statement & status\\ \midrule\endhead",
        r"\bottomrule\endlastfoot",
    ]
    for r in idents:
        status = r"\pass" if r.get("passed") else r"\fail"
        desc = tex_escape(r.get("description", ""))
        if not r.get("passed"):
            desc += rf"\newline{{\footnotesize residual: \texttt{{{tex_escape(str(r.get('residual', ''))[:300])}}}}}"
        lines.append(rf"\texttt{{{tex_name(r.get('name', ''))}}} & {desc} & {status}\\")
    lines += [r"\end{longtable}", r"\end{small}"]
    return "\n".join(lines) + "\n"


def equations_tex(family: str, eqs: list[Equation], note: str) -> str:
    r"""`\eq@<family>@<NAME>` definitions (used by `\geneq`), plus an appendix list of every exported closed form."""
    defs = [f"% closed forms of derivations/{family}.py, printed by derivations.codegen.to_latex"]
    for e in eqs:
        if e.latex is not None:
            defs.append(_def(csname("eq", family, e.name), e.latex))
    return "\n".join(defs) + "\n"


def equation_list_tex(family: str, eqs: list[Equation], note: str) -> str:
    if not eqs:
        return _placeholder(f"closed forms of {family}", note or "no sympy expressions exported")
    lines = []
    for e in eqs:
        label = rf"\texttt{{derivations.{tex_escape(family)}.{tex_escape(e.name)}}}"
        if e.latex is None:
            lines.append(rf"\noindent {label}: \emph{{{tex_escape(e.problem)}}}\par")
        else:
            lines.append(rf"\noindent {label}:" + "\n" + rf"\begin{{equation*}}\fiteq{{{e.latex}}}\end{{equation*}}")
    return "\n".join(lines) + "\n"


def figures_tex(family: str, figs: list[FigureInfo], figures_dir: Path, build_dir: Path, quick: bool,
                failures: dict[str, str]) -> str:
    if not figs:
        return _placeholder(f"figures of {family}", f"no figures/{family}_*.py module defines a FIGURE yet")
    out = []
    for f in figs:
        pdf = Path(figures_dir) / f"{f.name}.pdf"
        caption = tex_caption(f.caption) if f.caption else tex_escape(f.name)
        data = ", ".join(rf"\texttt{{{tex_escape(e)}}}" for e in f.experiments)
        caption += rf" Drawn by \texttt{{python -m figures {tex_escape(f.name)}}} from the stored results of {data}" \
                   + (" (quick grids)." if quick else " (full grids).")
        if figure_shown(f, figures_dir, failures):  # a failed drawing never shows an old PDF
            rel = os.path.relpath(pdf.resolve(), Path(build_dir).resolve()).replace(os.sep, "/")
            body = rf"\includegraphics[width=\linewidth,height=0.42\textheight,keepaspectratio]{{{rel}}}"
        else:
            why = f.problem or failures.get(f.name) or f"{pdf.name} was not produced (run python -m figures {f.name})"
            body = rf"\missingfigure{{{tex_escape(f.name)}}}{{{tex_escape(why)}}}"
        out.append("\n".join([r"\begin{figure}[tbp]", r"\centering", body,
                              rf"\caption{{{caption}}}\label{{fig:{f.name}}}", r"\end{figure}"]))
    return "\n".join(out) + "\n"


@dataclass
class Generated:
    files: list[Path] = field(default_factory=list)
    numbers: list[str] = field(default_factory=list)
    includegraphics: list[Path] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def generate(
    gen_dir,
    validation_json,
    derive_json=None,
    figures_dir=None,
    build_dir=None,
    quick: bool = True,
    figure_failures: dict | None = None,
) -> Generated:
    """Write every paper/generated/*.tex file; returns what was written and the problems found on the way."""
    gen_dir = Path(gen_dir)
    build_dir = Path(build_dir) if build_dir is not None else gen_dir.parent
    figures_dir = Path(figures_dir) if figures_dir is not None else ROOT / "figures" / "out"
    gen_dir.mkdir(parents=True, exist_ok=True)
    result = Generated()
    failures = dict(figure_failures or {})

    rows = load_json_rows(validation_json)
    source = tex_path(validation_json) if validation_json else "?"
    if rows is None:
        result.problems.append(f"no validation results at {validation_json}")
    idents = load_json_rows(derive_json) if derive_json else None
    if idents is None:
        result.problems.append(f"no identity results at {derive_json}")
    try:
        figs, fig_problems = discover_figures()
    except Exception as err:
        figs, fig_problems = [], [f"figures package cannot be imported: {type(err).__name__}: {err}"]
    result.problems += fig_problems

    def write(name, text):
        path = gen_dir / f"{name}.tex"
        path.write_text("% generated by paper/generate.py: do not edit\n" + text)
        result.files.append(path)

    all_rows = rows or []
    write("numbers", number_macros(all_rows))
    n = len(all_rows)
    n_pass = sum(r.get("status") == "PASS" for r in all_rows)
    fams_validated = [f for f in FAMILIES if any(r.get("family") == f for r in all_rows)]
    n_id = len(idents or [])
    n_id_pass = sum(bool(r.get("passed")) for r in idents or [])
    summary = [
        rf"\renewcommand{{\NChecks}}{{{vcount(n)}}}",
        rf"\renewcommand{{\NPass}}{{{vcount(n_pass)}}}",
        rf"\renewcommand{{\NFail}}{{{vcount(n - n_pass)}}}",
        rf"\renewcommand{{\NExperiments}}{{{vcount(len({r.get('experiment') for r in all_rows}))}}}",
        rf"\renewcommand{{\NFamiliesValidated}}{{{vcount(len(fams_validated))}}}",
        rf"\renewcommand{{\NFamilies}}{{{vcount(len(FAMILIES))}}}",
        rf"\renewcommand{{\NIdentities}}{{{vcount(n_id)}}}",
        rf"\renewcommand{{\NIdentitiesPass}}{{{vcount(n_id_pass)}}}",
        rf"\renewcommand{{\NFigures}}{{{vcount(sum(figure_shown(f, figures_dir, failures) for f in figs))}}}",
        rf"\renewcommand{{\ValidationMode}}{{{'quick' if quick else 'full'}}}",
        rf"\renewcommand{{\ValidationSource}}{{{source}}}",
    ]
    write("summary", "\n".join(summary) + "\n")
    write("overview", overview_table(all_rows, idents or [], figs, Path(figures_dir), quick, failures))

    for fam in FAMILIES:
        fam_rows = [r for r in all_rows if r.get("family") == fam]
        if fam_rows:
            write(f"{fam}_validation", family_summary(fam, fam_rows, quick) + "\n" + validation_table(fam, fam_rows, source, quick))
        else:
            why = ("no validation results file" if rows is None
                   else f"no rows for this family in {Path(validation_json).name} (run python -m sims validate "
                        f"--family {fam}" + (" --quick)" if quick else ")"))
            write(f"{fam}_validation", _placeholder(f"{FAMILY_TITLES[fam]}: not yet validated", why))
        fam_ids = [r for r in (idents or []) if r.get("family") == fam]
        if fam_ids:
            write(f"{fam}_identities", identity_table(fam, fam_ids))
        else:
            write(f"{fam}_identities", _placeholder(f"{FAMILY_TITLES[fam]}: identities not yet checked",
                                                    "no identity results for this family (python -m sims derive --json results/derive.json)"))
        eqs, note = family_equations(fam)
        if note:
            result.problems.append(note)
        write(f"{fam}_equations", equations_tex(fam, eqs, note))
        write(f"{fam}_equation_list", equation_list_tex(fam, eqs, note))
        fam_figs = [f for f in figs if f.family == fam]
        write(f"{fam}_figures", figures_tex(fam, fam_figs, figures_dir, build_dir, quick, failures))

    for p in result.files:
        text = p.read_text()
        result.numbers += re.findall(r"\\vnum\{([^}]*)\}", text)
        for g in re.findall(r"\\includegraphics(?:\[[^\]]*\])?\{([^}]*)\}", text):
            result.includegraphics.append((build_dir / g).resolve())
    return result
