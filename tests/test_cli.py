"""caw-core train from the command line: runs, resumes, and refuses bad input clearly."""

from __future__ import annotations

import json

import pytest

from caw_core.cli import main

BASE = ["train", "--model", "caw-test-tiny", "--pretrained", "none", "--data", "unit-blobs", "--batch-size", "16",
        "--num-workers", "0", "--device", "cpu", "--warmup-steps", "0", "--quiet"]


def test_train_then_resume_with_more_steps(tmp_path, capsys):
    runs = str(tmp_path / "runs")
    assert main(BASE + ["--max-steps", "2", "--runs-dir", runs, "--name", "cli"]) == 0
    run_dir = tmp_path / "runs" / "cli"
    config = json.loads((run_dir / "config.json").read_text())
    assert config["method"] == "caw" and config["max_steps"] == 2
    assert main(["train", "--resume", str(run_dir), "--max-steps", "4", "--quiet"]) == 0
    steps = [json.loads(line)["step"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]
    assert "done at step 4" in capsys.readouterr().out


@pytest.mark.parametrize("extra, message", [
    (["--data", "cifar11"], "cifar10"),
    (["--eps", "-1"], "eps must be >= 0"),
    (["--model", "ViT-B-31"], "ViT-B-32"),
    (["--data", "tinyimagenet", "--data-root", "/nonexistent"], "wnids.txt"),
    (["--device", "garbage"], "device must be"),
    (["--name", "a/../../escape"], "plain folder name"),
])
def test_bad_input_exits_2_with_a_clear_message(extra, message, capsys, tmp_path):
    assert main(BASE + ["--runs-dir", str(tmp_path)] + extra) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_unknown_method_is_rejected_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(BASE + ["--method", "cawx"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_resume_of_a_folder_that_is_not_a_run_says_so(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path)]) == 2
    assert "config.json" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["toy", "pretrain", "--steps", "-1"], "positive integer"),
    (["toy", "pretrain", "--lr", "nan"], "positive number"),
    (["toy", "sample", "--out", "x.png", "--n", "0"], "positive integer"),
    (BASE + ["--lr", "inf"], "finite number"),
    (BASE + ["--lr", "1e308"], "finite number"),
    (BASE + ["--eps", "1e308"], "finite number"),
])
def test_the_parser_refuses_bad_numbers(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_every_config_field_has_a_flag_and_unset_flags_stay_unset():
    """eval, bench, toy pretrain and demo bind their config dataclasses the same way train does."""
    import dataclasses

    from caw_core.benchmarks.bench import BenchConfig
    from caw_core.cli import build_parser
    from caw_core.demo import DemoConfig
    from caw_core.evaluate import EvalConfig
    from caw_core.toy.pretrain import PretrainConfig

    skipped = {EvalConfig: {"models"}, PretrainConfig: {"extra", "name"}}
    for words, config_cls in ((["eval"], EvalConfig), (["bench"], BenchConfig), (["toy", "pretrain"], PretrainConfig),
                              (["demo"], DemoConfig)):
        args = build_parser(words).parse_args(words)
        fields = {f.name for f in dataclasses.fields(config_cls)} - skipped.get(config_cls, set())
        assert fields <= set(vars(args)), (words, fields - set(vars(args)))
        assert all(getattr(args, name) is None for name in fields), words  # defaults come from the dataclass


@pytest.mark.parametrize("argv", [
    ["bench", "--methods", ""], ["bench", "--methods", " , "], ["eval", "--datasets", ""],
    ["eval", "--eps", "1e308"], ["toy", "pretrain", "--keep-prob", "2"],
])
def test_empty_lists_and_absurd_values_are_refused_by_the_parser(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "expected" in capsys.readouterr().err
