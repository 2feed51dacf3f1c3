"""`python -m sims list | run | validate | derive`: the command-line face of the experiment registry."""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import sys
import time
from pathlib import Path

from . import registry
from .grid import parse_set
from .run import DEFAULT_OUT, run_experiment, validate_experiment


class UsageError(Exception):
    """Bad command-line input: printed as one line, exit status 2."""


def _fmt(x) -> str:
    if isinstance(x, float) and (math.isnan(x) or math.isinf(x)):
        return str(x)
    try:
        return f"{float(x):.4g}"
    except (TypeError, ValueError):
        return str(x)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sims", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("list", help="every experiment, its family, claim and paper")

    r = sub.add_parser("run", help="run (or resume) one experiment into its zarr store")
    r.add_argument("name")
    r.add_argument("--quick", action="store_true", help="the small grid used by validation and tests")
    r.add_argument("--set", action="append", metavar="AXIS=RANGE",
                   help="override a grid axis: start:stop:num, start:stop:num:log or v1,v2,...")
    r.add_argument("--seeds", type=int, default=None, help="number of seeds (adds to the seed dim)")
    r.add_argument("--seed", type=int, default=0, help="base PRNG seed")
    r.add_argument("--chunk-size", type=int, default=None)
    r.add_argument("--out", default=DEFAULT_OUT, help="results directory (default: results/)")
    r.add_argument("--fresh", action="store_true", help="discard this run's stored results and recompute")

    v = sub.add_parser("validate", help="run every comparison and print theory vs simulation")
    v.add_argument("--quick", action="store_true")
    v.add_argument("--family", default=None)
    v.add_argument("--experiment", action="append", default=None, help="only these experiments")
    v.add_argument("--json", default=None, metavar="PATH", help="also write the rows as JSON")
    v.add_argument("--out", default=DEFAULT_OUT)
    v.add_argument("--fresh", action="store_true")

    d = sub.add_parser("derive", help="check every sympy identity simplifies to zero")
    d.add_argument("--family", default=None)
    d.add_argument("--json", default=None, metavar="PATH")
    return p


def cmd_list(args) -> int:
    exps = registry.select()
    if not exps:
        print("no experiments registered")
        return 0
    for e in sorted(exps, key=lambda e: e.name):
        print(f"{e.name}\n    family: {e.family}\n    claim:  {e.claim}\n    paper:  {e.paper}")
    return 0


def cmd_run(args) -> int:
    exp = registry.get(args.name)
    overrides = parse_set(args.set)
    ds = run_experiment(exp, quick=args.quick, out=args.out, fresh=args.fresh, overrides=overrides or None,
                        seeds=args.seeds, seed=args.seed, chunk_size=args.chunk_size)
    print(ds)
    return 0


def _write_json(path, rows):
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(rows, indent=1, default=str))
    tmp.replace(path)


def _merge_rows(path: Path, rows: list, validated: set) -> list:
    """Rows of the stored validation file for experiments not validated now, then this run's rows."""
    try:
        old = json.loads(path.read_text())
        old = [r for r in old if isinstance(r, dict) and r.get("experiment") not in validated]
    except (OSError, ValueError):
        old = []
    return old + rows


def cmd_validate(args) -> int:
    exps = registry.select(args.family)
    if args.experiment:
        for name in args.experiment:
            registry.get(name)
        exps = [e for e in exps if e.name in args.experiment]
    if not exps:
        raise UsageError("no experiments match")
    rows = []
    for exp in exps:
        t0 = time.perf_counter()
        checks = validate_experiment(exp, quick=args.quick, out=args.out, fresh=args.fresh)
        dt = time.perf_counter() - t0
        for c in checks:
            rows.append({
                "family": exp.family, "experiment": exp.name, "claim": c.claim, "theory": c.theory,
                "simulated": c.simulated, "error": c.error, "tolerance": c.tolerance,
                "status": "PASS" if c.passed else "FAIL", "note": c.note, "paper": exp.paper,
                "quick": bool(args.quick), "seconds": round(dt, 2),
            })
            print(f"{rows[-1]['status']}  {exp.name}: {c.claim}\n"
                  f"      theory={_fmt(c.theory)} simulated={_fmt(c.simulated)} "
                  f"error={_fmt(c.error)} tol={_fmt(c.tolerance)}", flush=True)
    n_fail = sum(r["status"] == "FAIL" for r in rows)
    print(f"\n{len(rows) - n_fail} passed, {n_fail} failed ({len(exps)} experiments)")
    default_json = Path(args.out) / ("validation-quick.json" if args.quick else "validation.json")
    _write_json(default_json, _merge_rows(default_json, rows, {e.name for e in exps}))
    if args.json:
        _write_json(args.json, rows)
    return 1 if n_fail else 0


def identities_of(family: str):
    """The IDENTITIES list of derivations.<family> (empty if that module is not written yet)."""
    try:
        mod = importlib.import_module(f"derivations.{family}")
    except ModuleNotFoundError as err:
        if err.name == f"derivations.{family}":
            return []
        raise
    return list(getattr(mod, "IDENTITIES", []))


def cmd_derive(args) -> int:
    from derivations.codegen import check_identities

    if args.family is not None and args.family not in registry.FAMILIES:
        raise UsageError(f"unknown family {args.family!r}; one of {', '.join(registry.FAMILIES)}")
    fams = [args.family] if args.family else list(registry.FAMILIES)
    results = []
    for fam in fams:
        for r in check_identities(identities_of(fam), fam):
            results.append(r)
            status = "PASS" if r.passed else "FAIL"
            print(f"{status}  {fam}.{r.name}: {r.description}" + ("" if r.passed else f"\n      residual: {r.residual}"),
                  flush=True)
    n_fail = sum(not r.passed for r in results)
    print(f"\n{len(results) - n_fail} passed, {n_fail} failed")
    if args.json:
        _write_json(args.json, [r.__dict__ for r in results])
    return 1 if n_fail else 0


COMMANDS = {"list": cmd_list, "run": cmd_run, "validate": cmd_validate, "derive": cmd_derive}


def main(argv=None) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit_:  # argparse: --help (0) or a usage error (2, message already printed)
        return int(exit_.code or 0)
    try:
        return COMMANDS[args.command](args)
    except (UsageError, ValueError, TypeError, PermissionError, FileNotFoundError) as err:
        if os.environ.get("SIMS_DEBUG"):
            raise
        msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        print(f"error: {msg}", file=sys.stderr)  # SIMS_DEBUG=1 shows the traceback instead
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished chunks are stored; run the same command again to resume", file=sys.stderr)
        return 130
