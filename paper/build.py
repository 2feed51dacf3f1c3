"""`python -m paper [--full]` (or `python paper/build.py`): results -> figures -> generated LaTeX -> paper/main.pdf.

1. `python -m sims derive --family F --json ...`, one family at a time, for the families results/derive.json lacks
   or whose IDENTITIES list changed (all of them with --refresh);
2. `python -m sims validate --quick` (--full: without --quick), one family at a time, for the registered experiments
   that results/validation[-quick].json lacks (all of them when it is missing, or with --refresh); rows merged in;
3. every figure of `python -m figures` (a figure whose data is missing runs its experiments itself);
4. paper/generated/*.tex from derivations/ (sympy) and the results (paper/generate.py);
5. `latexmk -pdf` -> paper/main.pdf. Without latexmk: exit status 2 and the apt line that installs it.

Exit status: 0 built; 1 a figure or the LaTeX compile failed; 2 bad usage or latexmk missing.
Failing validation checks do not stop the build: they are printed as FAIL in the paper.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python paper/build.py` from a fresh clone
    sys.path.insert(0, str(ROOT))

from paper.generate import FAMILIES, PAPER_DIR, discover_figures, generate, load_json_rows  # noqa: E402

APT_LINE = ("sudo apt-get update && sudo apt-get install -y --no-install-recommends "
            "latexmk texlive-latex-recommended texlive-fonts-recommended")
SOURCES = ("main.tex", "references.bib", "sections")


def log(msg: str) -> None:
    print(f"[paper] {msg}", flush=True)


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def run_sims(args: list[str]) -> int:
    """`python -m sims ARGS` in the repository root (a subprocess: its own JAX, its own exit status)."""
    cmd = [sys.executable, "-m", "sims", *args]
    log("$ " + " ".join(["python", "-m", "sims", *args]))
    return subprocess.call(cmd, cwd=ROOT, env=_env())


def ensure_derive(results: Path, refresh: bool) -> list[str]:
    """results/derive.json from `python -m sims derive`, one family at a time: the families it lacks, or whose
    list of identities changed since (all with `refresh`)."""
    path = results / "derive.json"
    old = load_json_rows(path) or []
    have = {r.get("family") for r in old}
    todo = list(FAMILIES) if refresh else [f for f in FAMILIES if f not in have or _identities_changed(f, old)]
    if not todo:
        log(f"identities: using {path}")
        return []
    problems, new_rows = [], []
    tmp_json = results / ".paper-derive.json"
    for fam in todo:
        tmp_json.unlink(missing_ok=True)
        rc = run_sims(["derive", "--family", fam, "--json", str(tmp_json)])
        rows = [r for r in (load_json_rows(tmp_json) or []) if r.get("family") == fam]
        if rc not in (0, 1) or not tmp_json.exists():
            problems.append(f"python -m sims derive --family {fam} exited with status {rc}")
        elif rc == 1:
            problems.append(f"some {fam} sympy identities FAIL (they are marked FAIL in the paper)")
        new_rows += rows
    tmp_json.unlink(missing_ok=True)
    redone = {r.get("family") for r in new_rows}
    rows = [r for r in old if r.get("family") not in redone] + new_rows
    order = {f: i for i, f in enumerate(FAMILIES)}
    rows.sort(key=lambda r: order.get(r.get("family"), len(order)))
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(rows, indent=1, default=str))
    tmp.replace(path)
    return problems


def _identities_changed(family: str, rows: list[dict]) -> bool:
    """Whether derivations.<family>.IDENTITIES names differ from the stored results (identities added or removed)."""
    try:
        from sims.cli import identities_of

        current = [i.name for i in identities_of(family)]
    except Exception as err:  # a broken module: let `sims derive` report it
        log(f"identities: derivations.{family} cannot be imported ({type(err).__name__}: {err})")
        return True
    changed = current != [r.get("name") for r in rows if r.get("family") == family]
    if changed:
        log(f"identities: derivations.{family}.IDENTITIES changed since {family} was last checked: re-checking")
    return changed


def _registered() -> dict[str, str]:
    """Registered experiment name -> family, in family order (raises if an experiment module is broken)."""
    from sims import registry

    reg = registry.load_all()
    order = {f: i for i, f in enumerate(FAMILIES)}
    names = sorted(reg, key=lambda n: (order.get(reg[n].family, 99), list(reg).index(n)))
    return {n: reg[n].family for n in names}


def _stale(names, results: Path, full: bool) -> set[str]:
    """Experiments whose stored results no longer match their current grid/config (or are gone): re-validate them."""
    from sims.run import load, store_path

    out = set()
    for name in names:
        try:
            path = store_path(name_to_exp(name), not full, results)
            if not path.exists() or load(name, quick=not full, out=results) is None:
                out.add(name)
        except Exception as err:
            log(f"validation: cannot check the stored results of {name} ({type(err).__name__}: {err})")
            out.add(name)
    return out


def name_to_exp(name):
    from sims import registry

    return registry.get(name)


def ensure_validation(results: Path, full: bool, refresh: bool) -> list[str]:
    """Make results/validation[-quick].json cover every registered experiment.

    Runs `python -m sims validate` once per family (so one broken family cannot take the others down), only for
    the experiments the file lacks (all with `refresh`), and merges the new rows into the file.
    """
    path = results / ("validation.json" if full else "validation-quick.json")
    base = ["validate", *([] if full else ["--quick"]), "--out", str(results)]
    old = load_json_rows(path) or []
    try:
        registered = _registered()
    except Exception as err:  # a broken experiment module: `sims validate` would fail the same way
        log(f"cannot list the registered experiments ({type(err).__name__}: {err})")
        if path.exists() and not refresh:
            return [f"experiment registry cannot be loaded: {type(err).__name__}: {err}; using {path} as it is"]
        rc = run_sims(base)
        return [] if rc == 0 and path.exists() else [f"python -m sims validate exited with status {rc}"]
    have = {r.get("experiment") for r in old}
    todo = list(registered) if refresh else [n for n in registered if n not in have]
    outdated = set() if refresh else _stale([n for n in registered if n in have], results, full)
    if outdated:
        log(f"validation: stored results of {', '.join(sorted(outdated))} do not match the current grid/config "
            "(or are gone): re-validating them with --fresh")
    stale = sorted(str(n) for n in have - set(registered))
    if not todo and not outdated and not stale:
        log(f"validation: using {path} (covers all {len(registered)} registered experiments)")
        return []
    problems, new_rows = [], []
    if todo:
        log(f"validation: running {len(todo)} of {len(registered)} registered experiments"
            + ("" if refresh or not path.exists() else f" (missing from {path})"))
    tmp_json = results / ".paper-validate.json"
    for fam in FAMILIES:
        for names, extra in (([n for n in todo if registered[n] == fam], []),
                             ([n for n in registered if n in outdated and registered[n] == fam], ["--fresh"])):
            if not names:
                continue
            tmp_json.unlink(missing_ok=True)
            rc = run_sims(base + extra + ["--json", str(tmp_json)] + [a for n in names for a in ("--experiment", n)])
            rows = [r for r in (load_json_rows(tmp_json) or []) if r.get("experiment") in names]
            if rc not in (0, 1) or not rows:
                problems.append(f"python -m sims validate for {fam} exited with status {rc}; its rows are missing")
            elif rc == 1:
                problems.append(f"some {fam} validation checks FAIL (they are marked FAIL in the paper)")
            new_rows += rows
    tmp_json.unlink(missing_ok=True)
    if stale:
        log(f"validation: dropping rows of experiments no longer registered: {', '.join(stale)}")
    # rows of an experiment that was re-run are replaced, or dropped if the re-run failed: never stale numbers
    attempted = set(todo) | outdated
    rows = [r for r in old if r.get("experiment") in registered and r.get("experiment") not in attempted] + new_rows
    order = {n: i for i, n in enumerate(registered)}
    rows.sort(key=lambda r: order.get(r.get("experiment"), len(order)))  # stable: keeps check order within one
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(rows, indent=1, default=str))
    tmp.replace(path)
    return problems


def build_figures(full: bool, results: Path, out: Path) -> dict[str, str]:
    """Draw every figure; returns {figure name: why it failed} for those that could not be drawn."""
    import matplotlib.pyplot as plt

    from figures.__main__ import build

    failures = {}
    infos, problems = discover_figures()
    for p in problems:
        log(f"figures: {p}")
    for f in infos:
        if f.problem:
            failures[f.name] = f.problem
            continue
        try:
            build([f.name], full=full, results=str(results), out=str(out))
        except Exception as err:
            failures[f.name] = f"drawing failed: {type(err).__name__}: {err}"
            log(f"figure {f.name} FAILED: {type(err).__name__}: {err}")
            traceback.print_exc(limit=3)
        finally:
            plt.close("all")
    return failures


def copy_sources(build_dir: Path) -> None:
    """Copy the hand-written LaTeX sources into an out-of-tree build directory."""
    build_dir.mkdir(parents=True, exist_ok=True)
    for name in SOURCES:
        src, dst = PAPER_DIR / name, build_dir / name
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            shutil.copy2(src, dst)


def compile_latex(build_dir: Path) -> tuple[int, str]:
    """latexmk -pdf main.tex in build_dir; (status, message)."""
    latexmk = shutil.which("latexmk")
    if latexmk is None:
        return 2, ("latexmk not found: the generated sources are in "
                   f"{build_dir}, but the PDF cannot be compiled. Install TeX with:\n    {APT_LINE}")
    cmd = [latexmk, "-pdf", "-interaction=nonstopmode", "-halt-on-error", "-file-line-error", "main.tex"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=build_dir, capture_output=True, text=True)
    (build_dir / "generated").mkdir(parents=True, exist_ok=True)
    (build_dir / "generated" / "latexmk.out").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0 or not (build_dir / "main.pdf").exists():
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
        return 1, f"latexmk failed (status {proc.returncode}); see {build_dir / 'main.log'}\n{tail}"
    log_text = (build_dir / "main.log").read_text(errors="replace")
    warn = [ln for ln in log_text.splitlines() if "undefined" in ln.lower() and "Warning" in ln]
    msg = f"{build_dir / 'main.pdf'} ({time.perf_counter() - t0:.1f} s)"
    if warn:
        msg += f"; {len(warn)} LaTeX warnings about undefined references, e.g. {warn[0].strip()}"
    return 0, msg


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m paper", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--full", action="store_true", help="the paper's full grids (default: quick grids)")
    p.add_argument("--results", default=str(ROOT / "results"), help="results directory (default: results/)")
    p.add_argument("--figures-out", default=str(ROOT / "figures" / "out"), help="figure directory (default: figures/out/)")
    p.add_argument("--build-dir", default=str(PAPER_DIR),
                   help="where generated/ and main.pdf go (default: paper/; another directory gets a copy of the sources)")
    p.add_argument("--refresh", action="store_true", help="re-run derive and validate even when their results exist")
    p.add_argument("--no-run", action="store_true", help="never run derive/validate: use whatever results exist")
    p.add_argument("--no-figures", action="store_true", help="do not draw figures (use the PDFs already there)")
    p.add_argument("--no-latex", action="store_true", help="stop after generating paper/generated/")
    args = p.parse_args(argv)
    if args.refresh and args.no_run:
        print("error: --refresh and --no-run contradict each other", file=sys.stderr)
        return 2

    t0 = time.perf_counter()
    results, fig_out, build_dir = Path(args.results).resolve(), Path(args.figures_out).resolve(), Path(args.build_dir).resolve()
    results.mkdir(parents=True, exist_ok=True)
    if build_dir != PAPER_DIR:
        copy_sources(build_dir)
    if not args.no_latex and shutil.which("latexmk") is None:
        log(f"warning: latexmk not found: results, figures and paper/generated/ will be made, but not the PDF "
            f"(exit status 2 at the end). Install TeX with: {APT_LINE}")
    problems: list[str] = []
    if not args.no_run:
        problems += ensure_derive(results, args.refresh)
        problems += ensure_validation(results, args.full, args.refresh)
    failures = {}
    if not args.no_figures:
        failures = build_figures(args.full, results, fig_out)
    val_json = results / ("validation.json" if args.full else "validation-quick.json")
    gen = generate(build_dir / "generated", val_json, results / "derive.json", fig_out, build_dir,
                   quick=not args.full, figure_failures=failures)
    log(f"generated {len(gen.files)} files in {build_dir / 'generated'} "
        f"({len(gen.numbers)} numbers, {len(gen.includegraphics)} figures)")
    problems += gen.problems + [f"figure {k}: {v}" for k, v in failures.items()]
    for prob in problems:
        log(f"note: {prob}")
    status = 1 if failures else 0
    if not args.no_latex:
        rc, msg = compile_latex(build_dir)
        if rc == 2:
            print(f"error: {msg}", file=sys.stderr)
            return 2
        if rc:
            print(f"error: {msg}", file=sys.stderr)
            status = 1
        else:
            log(msg)
    log(f"done in {time.perf_counter() - t0:.0f} s" + (" (with failures, see notes above)" if status else ""))
    return status


if __name__ == "__main__":
    sys.exit(main())
