"""Provenance attrs stored with every dataset: code revision, versions, precision, devices, time."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata as md
import json
import subprocess
import sys
from pathlib import Path

import jax

_PACKAGES = ("toymodels", "jax", "jaxlib", "diffrax", "equinox", "optax", "numpy", "scipy", "sympy", "xarray", "zarr")


def git_revision() -> str:
    """`git describe`-style revision of the checkout the package runs from ('+dirty' if modified), or 'unknown'."""
    root = Path(__file__).resolve().parents[1]
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=root, capture_output=True, text=True,
            timeout=5,
        ).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except Exception:
        return "unknown"


def versions() -> dict[str, str]:
    out = {}
    for p in _PACKAGES:
        try:
            out[p] = md.version(p)
        except md.PackageNotFoundError:
            out[p] = "not installed"
    out["python"] = sys.version.split()[0]
    return out


def provenance() -> dict:
    """Attrs describing how and where a result was computed (JSON-serialisable)."""
    devices = jax.devices()
    return {
        "git_revision": git_revision(),
        "versions": json.dumps(versions()),
        "x64": bool(jax.config.read("jax_enable_x64")),
        "device_kind": devices[0].device_kind,
        "device_platform": devices[0].platform,
        "device_count": len(devices),
        "process_count": jax.process_count(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
