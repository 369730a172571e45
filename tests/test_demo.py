"""The toy experiment (``caw-core demo``): the selection rule, the collapse check, and the whole pipeline in miniature."""

from __future__ import annotations

import json

import pytest

from caw_core.cli import main
from caw_core.data import toy_tasks
from caw_core.data.toyworld import TOY_TASKS
from caw_core.toy import selection
from caw_core.toy.experiment import Experiment, ExperimentConfig
from caw_core.toy.summary import compare, is_collapsed
from caw_core.toy.writeup import write_outputs

Score = selection.ValidationScore
VANILLA = Score(clean=0.9, robust=0.0, n=100)


def test_the_rule_picks_the_most_robust_lr_that_keeps_the_clean_floor():
    scores = {1e-4: Score(0.88, 0.05, 100), 3e-4: Score(0.60, 0.30, 100), 1e-3: Score(0.30, 0.45, 100)}
    choice = selection.choose_lr(scores, VANILLA)  # 1e-3 is more robust but below 0.6 x 0.9 = 0.54 clean
    assert (choice.lr, choice.eligible) == (3e-4, True)


def test_the_rule_breaks_ties_by_clean_then_smaller_lr_and_falls_back_to_the_cleanest():
    tied = {1e-3: Score(0.70, 0.2, 100), 1e-4: Score(0.80, 0.2, 100), 3e-4: Score(0.80, 0.2, 100)}
    assert selection.choose_lr(tied, VANILLA).lr == 1e-4
    none_eligible = {1e-3: Score(0.30, 0.4, 100), 1e-2: Score(0.40, 0.1, 100)}
    assert selection.choose_lr(none_eligible, VANILLA) == selection.Choice(1e-2, False)


def test_collapse_is_a_near_constant_prediction_or_chance_accuracy():
    assert is_collapsed([85, 5, 5, 5], 0.30)[0]  # one class takes 85% of the predictions
    assert is_collapsed([30, 25, 25, 20], 0.27)[0]  # spread out but at chance (1/4 + 2 standard errors)
    assert not is_collapsed([30, 25, 25, 20], 0.70)[0]


def test_a_difference_inside_the_spread_is_a_tie():
    a, b = {"mean": 50.0, "std": 3.0}, {"mean": 46.0, "std": 3.0}
    assert compare(a, b) == "tie"  # |4| < sqrt(9 + 9)
    assert compare({"mean": 60.0, "std": 1.0}, b) == "higher"
    assert compare({"mean": 60.0, "std": None}, b) == "n/a"


@pytest.fixture
def dataset_loads(monkeypatch):
    """Every toy dataset built, as (task attribute, split)."""
    split_of = {seed: split for split, (seed, _, _) in toy_tasks.SPLITS.items()}
    loads = []
    original = toy_tasks.ToySceneDataset.__init__

    def spy(self, attribute, seed, n, composition, transform):
        loads.append((attribute, split_of[seed]))
        original(self, attribute, seed, n, composition, transform)

    monkeypatch.setattr(toy_tasks.ToySceneDataset, "__init__", spy)
    return loads


def test_full_pipeline_in_miniature_writes_tables_plot_and_selection_without_touching_held_out_tasks(
        tmp_path, dataset_loads):
    config = ExperimentConfig(
        out=str(tmp_path / "exp"), methods=("tecoa", "caw"), seeds=(0, 1), lr_grid=(1e-3, 1e-2), ablation=True,
        train_steps=2, batch_size=8, n=6, val_n=6, eval_batch_size=6,
        train_overrides={"model": "caw-test-tiny", "pretrained": None, "warmup_steps": 0})
    experiment = Experiment(config)
    selecting, loads_during_selection = True, []
    for record in experiment.run():
        if record["event"] == "job" and record["job_stage"] in ("train", "evaluate"):
            selecting = False
        if selecting:
            loads_during_selection += dataset_loads
        dataset_loads.clear()
    assert loads_during_selection and set(loads_during_selection) <= {("shape", "train"), ("shape", "val")}
    assert ("shape", "val") in loads_during_selection

    out = tmp_path / "exp"
    record = json.loads((out / "selection.json").read_text())
    assert record["split"] == "val" and record["grid"] == [1e-3, 1e-2]
    assert set(record["methods"]) == {"tecoa", "caw"}
    for entry in record["methods"].values():
        assert entry["chosen_lr"] in (1e-3, 1e-2) and set(entry["scores"]) == {"0.001", "0.01"}

    written = write_outputs(experiment, "test", 1.0)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["methods"] == ["vanilla", "tecoa", "caw"] and summary["missing"] == []
    assert summary["ablation"] == ["caw-ce", "caw-ce-ca", "caw-ce-reg", "caw", "caw-kl-clean-adv",
                                   "caw-detach-weight"]
    caw = summary["variants"]["caw"]
    assert caw["seeds"] == [0, 1] and set(caw["tasks"]) == set(TOY_TASKS)
    assert caw["metrics"]["heldout_robust"]["std"] is not None  # two seeds, AutoAttack ran: a spread
    assert summary["variants"]["caw-ce"]["metrics"]["heldout_robust"] is None  # the ablation: PGD-10 only
    assert summary["variants"]["caw-ce"]["metrics"]["heldout_pgd"] is not None
    assert caw["lr"] == record["methods"]["caw"]["chosen_lr"]
    assert summary["variants"]["caw-ce"]["lr"] == caw["lr"]  # the ablation runs at CAW's chosen lr
    text = (out / "RESULTS.md").read_text()
    for heading in ("## Methods", "## Ablation", "## Learning-rate selection", "CAW vs TeCoA", "clean_vs_robust.png",
                    "PGD-10 accuracy (%)", "worst case per image over PGD-10 and AutoAttack"):
        assert heading in text
    for name in ("clean_vs_robust.png", "clean_vs_robust.svg", "per_task.png", "per_task.svg"):
        assert (out / name).stat().st_size > 1000
    assert written["markdown"] == text

    rerun = list(Experiment(config).run())  # resumable: nothing is trained or evaluated again
    assert [r["event"] for r in rerun] == ["finished"]


@pytest.mark.slow
def test_quick_demo_cli_says_where_the_table_and_plot_are(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--n", "8", "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert f"table: {out / 'RESULTS.md'}" in printed.err
    assert f"plot:  {out / 'clean_vs_robust.png'}" in printed.err
    written = (out / "RESULTS.md").read_text()
    assert "| CAW |" in written
    assert "Command: `caw-core demo --quick --n 8`" in written  # the flags that made the numbers, not the folder


def test_the_reported_command_names_every_flag_that_changes_the_run():
    from caw_core.demo import DemoConfig

    assert DemoConfig().command() == "caw-core demo"
    assert DemoConfig(out="elsewhere", full=True).command() == "caw-core demo --full"
    assert (DemoConfig(eps=8.0, n=32, device="cuda", workers=8).command()
            == "caw-core demo --eps 8 --n 32 --device cuda --workers 8")


def test_demo_rejects_bad_sizes(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--n", "0"])
    assert exit_info.value.code == 2 and "--n" in capsys.readouterr().err
    assert main(["demo", "--full", "--quick"]) == 2
    assert "--full and --quick exclude each other" in capsys.readouterr().err
