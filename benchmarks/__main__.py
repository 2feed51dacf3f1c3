"""`python -m benchmarks [--quick] [NAME ...]`: run the benchmarks, print a table, write benchmarks/results/*.json."""

import argparse
import json
import sys
from pathlib import Path

import jax

import sims  # noqa: F401  (float64, as in validation)
from sims.provenance import provenance

from .cases import CASES

RESULTS = Path(__file__).resolve().parent / "results"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument("names", nargs="*", help=f"benchmarks to run (default all): {', '.join(CASES)}")
    p.add_argument("--quick", action="store_true", help="small sizes (a minute or two on 2 CPU cores)")
    args = p.parse_args(argv)
    unknown = [n for n in args.names if n not in CASES]
    if unknown:
        print(f"error: unknown benchmark {unknown}; known: {', '.join(CASES)}", file=sys.stderr)
        return 2
    RESULTS.mkdir(parents=True, exist_ok=True)
    prov = provenance()
    print(f"device: {prov['device_kind']} x{prov['device_count']} ({jax.default_backend()}), x64={prov['x64']}")
    print(f"{'benchmark':28s} {'ratio':>10s} {'target':>8s}  details")
    for name in args.names or list(CASES):
        res = CASES[name](args.quick)
        res.update(provenance=prov, quick=args.quick)
        (RESULTS / f"{name}.json").write_text(json.dumps(res, indent=1, default=str))
        details = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in res.items()
                            if k not in ("ratio", "target", "provenance", "quick", "rows"))
        if "rows" in res:
            details += " | " + "; ".join(", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                                   for k, v in r.items()) for r in res["rows"])
        print(f"{name:28s} {res['ratio']:10.3g} {str(res.get('target', '-')):>8s}  {details}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
