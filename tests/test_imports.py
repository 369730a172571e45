"""Commands that run no model import neither torch nor open_clip (checked in a fresh interpreter)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "open_clip", "torchvision")

PROBE = """
import contextlib, io, json, sys
from caw_core.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    try:
        code = main(sys.argv[1:])
    except SystemExit as exc:
        code = exc.code
print(json.dumps({"code": code, "loaded": [m for m in %r if m in sys.modules]}))
""" % (HEAVY,)


def run_cli_in_fresh_interpreter(*argv: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("argv", [["--help"], ["--version"]])
def test_help_imports_no_torch(argv):
    result = run_cli_in_fresh_interpreter(*argv)
    assert result == {"code": 0, "loaded": []}


def test_report_imports_no_torch(tmp_path):
    from caw_core.results import Result, ResultKey, save_result

    for attack, flags in (("clean", [True, True]), ("pgd10", [True, False]), ("aa100", [False, None])):
        key = ResultKey("m-1", "toy-shape", attack, 1.0, "linf", 10, 0)
        save_result(tmp_path, Result(key, {"label": "m"}, [0, 1], flags, complete=True))
    out = tmp_path / "table.md"
    result = run_cli_in_fresh_interpreter("report", str(tmp_path), "--out", str(out))
    assert result == {"code": 0, "loaded": []}
    assert "Toy shape" in out.read_text()


@pytest.mark.parametrize("names", [[], ["all"]])
def test_data_check_imports_no_torch(tmp_path, names):
    result = run_cli_in_fresh_interpreter("data", "check", *names, "--root", str(tmp_path))
    assert result == {"code": 1, "loaded": []}  # 1: every file-based dataset is missing from the empty root


@pytest.mark.parametrize("argv", [["data", "check", "no-such-dataset"], ["report", "{bad}"]])
def test_user_errors_of_commands_without_a_model_import_no_torch(tmp_path, argv):
    (tmp_path / "broken.json").write_text("")  # not a caw result: one line, exit status 2
    result = run_cli_in_fresh_interpreter(*(arg.format(bad=tmp_path) for arg in argv))
    assert result == {"code": 2, "loaded": []}


def test_every_user_error_the_cli_names_exists():
    import importlib

    from caw_core.cli import USER_ERRORS

    for module, name in USER_ERRORS:
        assert issubclass(getattr(importlib.import_module(module), name), Exception)


def test_every_loader_and_attack_named_by_import_path_exists():
    from caw_core.attacks.registry import ATTACKS
    from caw_core.data import available_datasets, get_spec
    from caw_core.imports import imported

    specs = [get_spec(name) for name in available_datasets()]
    functions = [f for spec in specs for f in (spec.build, spec.download)] + [s.fn for s in ATTACKS.values()]
    named = [f for f in functions + [a for f in functions for a in getattr(f, "args", ())] if isinstance(f, imported)]
    assert len(named) >= 30  # every file-based dataset's loader (and download where it has one), pgd, cw
    assert all(callable(f.resolve()) for f in named), [f for f in named if not callable(f.resolve())]
    with pytest.raises(AttributeError):
        imported("caw_core.attacks.pgd:no_such_attack").resolve()


def test_one_tokenizer_per_architecture_per_process():
    from caw_core.models import load_model

    first, second = load_model("caw-test-tiny"), load_model("caw-test-tiny")
    assert first.tokenizer is second.tokenizer
    tokens = first.tokenizer(["a red circle."])
    assert tokens.equal(second.tokenizer(["a red circle."]))
