"""Every jupytext (py:percent) example under examples/ runs to completion (they assert their own comparisons)."""

import os
import pathlib
import subprocess
import sys

import pytest

EXAMPLES = sorted((pathlib.Path(__file__).resolve().parents[1] / "examples").glob("*.py"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(path, tmp_path):
    import jupytext

    nb = jupytext.read(path)  # parses as a notebook: the file is a valid py:percent script
    assert any(c.cell_type == "code" for c in nb.cells)
    env = {**os.environ, "PYTHONPATH": str(path.parents[1]), "MPLBACKEND": "Agg"}
    p = subprocess.run([sys.executable, str(path)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
