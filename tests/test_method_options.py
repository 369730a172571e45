"""Methods own their options and recipes: TrainConfig, config.json and the CLI flags follow the declarations."""

from __future__ import annotations

import dataclasses
import json

import pytest

from caw_core.cli import build_parser, main
from caw_core.commands.config_args import method_option_flags
from caw_core.methods import METHODS
from caw_core.methods.base import option_fields
from caw_core.train import TrainConfig, Trainer

BASE = ["train", "--model", "caw-test-tiny", "--pretrained", "none", "--data", "unit-blobs", "--batch-size", "16",
        "--num-workers", "0", "--device", "cpu", "--warmup-steps", "0", "--quiet", "--max-steps", "1"]


def test_fields_left_unset_take_the_methods_recipe_and_explicit_values_win():
    fare = TrainConfig(method="fare").resolve()
    assert (fare.optimizer, fare.lr, fare.weight_decay, fare.eps, fare.attack_steps) == ("adamw", 1e-5, 1e-4, 2.0, 10)
    assert TrainConfig(method="tecoa").resolve().lr == 1e-5
    assert TrainConfig(method="ft-adv").resolve().lr == 1e-4
    mine = TrainConfig(method="fare", optimizer="sgd", lr=3e-4, eps=1.0).resolve()
    assert (mine.optimizer, mine.lr, mine.eps, mine.attack_steps) == ("sgd", 3e-4, 1.0, 10)


def test_method_options_are_validated_against_the_chosen_method():
    with pytest.raises(ValueError, match="'alpha' is not an option of method 'pmg-aft'"):
        TrainConfig(method="pmg-aft", method_options={"alpha": 2.0}).validate()
    with pytest.raises(ValueError, match="variant must be one of reference, caw-v1"):
        TrainConfig(method="pmg-aft", method_options={"variant": "mine"}).validate()
    with pytest.raises(ValueError, match="detach_weight must be a bool"):
        TrainConfig(method_options={"detach_weight": "yes"}).validate()
    assert TrainConfig(method="pmg_aft").resolve().method_options == {"kl_original_weight": 1.0,
                                                                      "kl_clean_weight": 1.0, "variant": "reference"}


def test_method_options_round_trip_through_config_json(tiny_train_config, tmp_path):
    config = tiny_train_config(method="pmg-aft", max_steps=1, method_options={"variant": "caw-v1"})
    list(Trainer(config).run())
    stored = json.loads((tmp_path / "runs" / "run" / "config.json").read_text())
    assert stored["method_options"] == {"kl_original_weight": 1.0, "kl_clean_weight": 1.0, "variant": "caw-v1"}
    assert TrainConfig.from_run(tmp_path / "runs" / "run") == config


def test_old_config_json_with_top_level_caw_options_still_loads(tiny_train_config, tmp_path):
    folder = tmp_path / "old"
    folder.mkdir()
    old = {**dataclasses.asdict(tiny_train_config()), "alpha": 2.0, "beta": 0.5, "kl": "clean_adv",
           "detach_weight": True, "reg_space": "raw", "ablation": "full"}
    del old["method_options"]
    (folder / "config.json").write_text(json.dumps(old))
    config = TrainConfig.from_run(folder)
    assert config.method_options == {"alpha": 2.0, "beta": 0.5, "kl": "clean_adv", "detach_weight": True,
                                     "reg_space": "raw", "ablation": "full"}
    (folder / "config.json").write_text(json.dumps({**old, "method": "tecoa"}))
    assert TrainConfig.from_run(folder).method_options == {}  # every old run stored CAW's keys: dropped
    (folder / "config.json").write_text(json.dumps({**old, "method": "pmg-aft"}))
    assert TrainConfig.from_run(folder).method_options == {"variant": "caw-v1"}  # what PMG-AFT computed then


def test_every_option_of_every_method_has_a_flag_and_help():
    parser = build_parser()
    train = parser._subparsers._group_actions[0].choices["train"]
    flags = set(train._option_string_actions)
    for (method, name), names in method_option_flags(METHODS).items():
        assert f"--{method}-{name.replace('_', '-')}" in names and set(names) <= flags
    for cls in METHODS.values():
        for spec, _ in option_fields(cls.Options):
            assert spec.metadata["help"]


def test_short_flags_are_dropped_when_two_methods_share_an_option_name():
    class Twin:
        Options = METHODS["caw"].Options

    flags = method_option_flags({"caw": METHODS["caw"], "twin": Twin})
    assert flags[("caw", "alpha")] == ["--caw-alpha"] and flags[("twin", "alpha")] == ["--twin-alpha"]
    assert method_option_flags(METHODS)[("caw", "alpha")] == ["--alpha", "--caw-alpha"]


def test_cli_options_reach_the_run_config(tmp_path):
    runs = str(tmp_path / "runs")
    assert main(BASE + ["--runs-dir", runs, "--name", "a", "--alpha", "2", "--no-caw-detach-weight",
                        "--kl", "clean_adv"]) == 0
    stored = json.loads((tmp_path / "runs" / "a" / "config.json").read_text())
    assert stored["method_options"]["alpha"] == 2.0 and stored["method_options"]["kl"] == "clean_adv"
    assert stored["method_options"]["detach_weight"] is False and stored["lr"] == 5e-5
    assert main(BASE + ["--runs-dir", runs, "--name", "b", "--method", "pmg-aft", "--pmg-aft-variant", "caw-v1"]) == 0
    assert json.loads((tmp_path / "runs" / "b" / "config.json").read_text())["method_options"]["variant"] == "caw-v1"


def test_an_option_of_another_method_is_a_clear_error(tmp_path, capsys):
    assert main(BASE + ["--runs-dir", str(tmp_path), "--method", "pmg-aft", "--alpha", "2"]) == 2
    err = capsys.readouterr().err
    assert "--caw-alpha (an option of caw) given with --method pmg-aft" in err and "Traceback" not in err


def test_help_states_the_warmup_cap_and_each_methods_recipe(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "capped at a tenth of the run" in text
    assert "1e-05 for tecoa, fare" in text and "adamw for fare" in text


def test_method_options_cannot_change_on_resume(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path), "--alpha", "3"]) == 2
    assert "keeps the method options of its config.json" in capsys.readouterr().err
