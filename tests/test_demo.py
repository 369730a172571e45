"""caw-core demo --quick: the whole pipeline (train TeCoA and CAW, evaluate, table) on the embedded toy world."""

from __future__ import annotations

import pytest

from caw_core.cli import main
from caw_core.data.toyworld import TOY_TASKS

pytestmark = pytest.mark.slow


def test_quick_demo_prints_the_table_and_a_rerun_reuses_everything(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    printed = capsys.readouterr()
    table = (out / "RESULTS.md").read_text()
    for row in ("| toy |", "| toy+tecoa |", "| toy+caw |"):
        assert row in table
    assert table.count("| Avg |") >= 2  # clean and robust tables
    assert "Robust accuracy" in table and "Clean accuracy" in table
    assert table.strip() in printed.out
    assert len(list((out / "runs").glob("*/checkpoints/latest.json"))) == 2
    assert "(reused)" not in printed.err

    assert main(["demo", "--quick", "--out", str(out)]) == 0
    rerun = capsys.readouterr().err
    assert rerun.count("(reused)") == 3 * len(TOY_TASKS) * 2  # 3 models x tasks x (clean, pgd)
    assert "step " not in rerun  # nothing trained again
