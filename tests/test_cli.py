"""The `python -m sims` and `python -m figures` command lines: outputs, exit codes and one-line errors."""

import json
import os
import subprocess
import sys

import pytest

from sims import registry
from sims.cli import main

from tests_toy import TOY


@pytest.fixture(autouse=True)
def toy_registered(monkeypatch):
    registry.load_all()
    monkeypatch.setitem(registry.REGISTRY, TOY.name, TOY)
    yield


def test_list_shows_claims(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "deep_linear.cli_toy" in out and "toy for CLI tests" in out


def test_run_then_validate_writes_store_and_json(results_dir, capsys, tmp_path):
    assert main(["run", TOY.name, "--quick", "--out", str(results_dir)]) == 0
    assert (results_dir / f"{TOY.name}-quick.zarr").is_dir()
    js = tmp_path / "rows.json"
    assert main(["validate", "--quick", "--experiment", TOY.name, "--out", str(results_dir), "--json", str(js)]) == 0
    rows = json.loads(js.read_text())
    assert rows[0]["status"] == "PASS" and rows[0]["experiment"] == TOY.name
    assert "1 passed, 0 failed" in capsys.readouterr().out


def test_run_with_set_goes_to_its_own_store(results_dir):
    assert main(["run", TOY.name, "--quick", "--set", "a=0.1:0.3:3", "--out", str(results_dir)]) == 0
    stores = sorted(p.name for p in results_dir.iterdir())
    assert len(stores) == 1 and stores[0].startswith(TOY.name + "-quick-")


@pytest.mark.parametrize(
    "argv,message",
    [
        (["run", "nope.nothing"], "unknown experiment"),
        (["run", TOY.name, "--set", "a=1:2"], "--set a"),
        (["run", TOY.name, "--set", "zz=1:2:3"], "unknown grid axis"),
        (["run", TOY.name, "--set", "a"], "expected axis="),
        (["run", TOY.name, "--seeds", "0"], "seeds"),
        (["validate", "--family", "nofamily"], "unknown family"),
        (["derive", "--family", "nofamily"], "unknown family"),
    ],
)
def test_bad_input_is_one_line_exit_2(argv, message, capsys, results_dir):
    assert main(argv + (["--out", str(results_dir)] if argv[0] == "run" else [])) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and message in err and "\n" not in err


def test_unwritable_results_directory(tmp_path, capsys):
    if os.geteuid() == 0:
        target = "/proc/forbidden"  # even root cannot create directories here
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        target = str(ro / "sub")
    assert main(["run", TOY.name, "--quick", "--out", target]) == 2
    assert "results directory" in capsys.readouterr().err


def test_subprocess_cli_unknown_name_exit_2():
    p = subprocess.run([sys.executable, "-m", "sims", "run", "does.not.exist"], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert p.returncode == 2 and p.stderr.strip().startswith("error: unknown experiment")
    p = subprocess.run([sys.executable, "-m", "figures", "nope"], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": os.getcwd()})
    assert p.returncode == 2 and "unknown figure" in p.stderr
