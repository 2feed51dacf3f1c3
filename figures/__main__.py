"""`python -m figures [NAME ...] [--full] [--results DIR] [--out DIR]`: draw figures from stored results.

A figure whose experiments have no stored results runs them first (quick mode unless --full).
Writes NAME.pdf and NAME.png into figures/out/ (or --out).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import matplotlib.pyplot as plt

import sims  # noqa: F401  (x64)
from sims.run import DEFAULT_OUT, run_experiment

from . import all_figures, get_figure

OUT = Path(__file__).resolve().parent / "out"


def build(names=None, full: bool = False, results=DEFAULT_OUT, out=OUT) -> list[Path]:
    """Draw the named figures (all by default) and return the files written."""
    figs = [get_figure(n) for n in names] if names else list(all_figures().values())
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for f in figs:
        t0 = time.perf_counter()
        datasets = {e: run_experiment(e, quick=not full, out=results, progress=False) for e in f.experiments}
        fig = f.draw(datasets)
        for ext in ("pdf", "png"):
            path = out / f"{f.name}.{ext}"
            fig.savefig(path, bbox_inches="tight")
            written.append(path)
        plt.close(fig)
        print(f"{f.name}: {out / f.name}.{{pdf,png}} ({time.perf_counter() - t0:.1f} s)", flush=True)
    return written


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m figures", description=__doc__)
    p.add_argument("names", nargs="*", help="figures to draw (default: all)")
    p.add_argument("--full", action="store_true", help="use (and if needed run) the full grids instead of quick ones")
    p.add_argument("--results", default=DEFAULT_OUT, help="results directory (default: results/)")
    p.add_argument("--out", default=str(OUT), help="where to write PDF and PNG files")
    p.add_argument("--list", action="store_true", help="list the figures and exit")
    args = p.parse_args(argv)
    try:
        if args.list:
            for name, f in sorted(all_figures().items()):
                print(f"{name}: {', '.join(f.experiments)}\n    {f.caption}")
            return 0
        build(args.names, full=args.full, results=args.results, out=args.out)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
