"""Results tied to the exact weights and attack configuration; bad results files, bad flags and hostile labels.

Runs caw-test-tiny (random weights, 32 px) on the procedurally drawn toy-shape task: seconds on a CPU.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import pytest
import torch

from caw_core.cli import main
from caw_core.evaluate import EvalConfig, evaluate
from caw_core.models import ModelSpec, load_model
from caw_core.models.checkpoint import TrainerState, save_checkpoint
from caw_core.protocols import NativeResolution, get_protocol
from caw_core.report import build_report, render_report, to_csv, to_markdown
from caw_core.results import KIND, Result, ResultKey, ResultsFileError, load_results, save_result

TINY = ModelSpec("caw-test-tiny", pretrained=None)


@pytest.fixture
def weights_file(tmp_path) -> Path:
    """One random init of caw-test-tiny as a local weights file, so every load gives the same model."""
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = load_model(TINY)
    path = tmp_path / "tiny.safetensors"
    save_file({k: v.contiguous() for k, v in model.clip.state_dict().items()}, str(path))
    return path


def _save_run(run: Path, base: ModelSpec, step: int, scale: float) -> None:
    """A caw run folder whose latest checkpoint is the base image tower with its weights times ``scale``."""
    model = load_model(base)
    with torch.no_grad():
        for param in model.image_encoder.parameters():
            param.mul_(scale)
    optimizer = torch.optim.SGD(model.image_encoder.parameters(), lr=0.1)
    state = TrainerState(step, 0, optimizer.state_dict(), {"attack0": torch.Generator().get_state()}, {})
    save_checkpoint(run / "checkpoints", model.image_encoder, {"name": base.name, "pretrained": base.pretrained}, state)


def _config(out: Path, models, **overrides) -> EvalConfig:
    values = dict(models=models, datasets=["toy-shape"], attacks=["clean", "pgd2"], n=8, batch_size=4,
                  out=str(out), device="cpu", data_root=str(out / "data"))
    values.update(overrides)
    return EvalConfig(**values)


def _results(records) -> list[dict]:
    return [r for r in records if r["event"] == "result"]


def test_a_continued_run_is_evaluated_again_not_reused(tmp_path, weights_file):
    base = ModelSpec("caw-test-tiny", str(weights_file))
    run = tmp_path / "runs" / "caw"
    _save_run(run, base, step=10, scale=1.0)
    spec = ModelSpec(base.name, base.pretrained, str(run))
    first = _results(evaluate(_config(tmp_path / "results", [spec])))
    assert not any(r["reused"] for r in first)
    assert all(r["reused"] for r in _results(evaluate(_config(tmp_path / "results", [spec]))))

    _save_run(run, base, step=20, scale=0.0)  # training continued: a new latest checkpoint, other weights
    again = _results(evaluate(_config(tmp_path / "results", [spec])))
    assert not any(r["reused"] for r in again)
    fresh = _results(evaluate(_config(tmp_path / "fresh", [spec])))  # the new weights, never evaluated before
    assert [r["accuracy"] for r in again] == [r["accuracy"] for r in fresh]
    stored = load_results(tmp_path / "results", models=[spec])
    assert len(stored) == 2 and len({r.key.weights for r in stored}) == 1  # the stale files were replaced
    assert stored[0].key.weights != "" and stored[0].key.config_id != ""


def test_overwritten_base_weights_are_evaluated_again(tmp_path, weights_file):
    spec = ModelSpec("caw-test-tiny", str(weights_file))
    list(evaluate(_config(tmp_path, [spec])))
    from safetensors.torch import load_file, save_file

    weights = {k: v * 0.5 for k, v in load_file(str(weights_file)).items()}
    save_file(weights, str(weights_file))
    assert not any(r["reused"] for r in _results(evaluate(_config(tmp_path, [spec]))))


def test_cancel_inside_an_attack_stops_at_once_and_the_rerun_finishes_the_same_table(tmp_path, weights_file):
    spec = ModelSpec("caw-test-tiny", str(weights_file))
    whole = list(evaluate(_config(tmp_path / "whole", [spec], attacks=["clean", "pgd50"])))
    checks = []

    def stop() -> bool:  # asked before every forward pass: stop in the middle of the first PGD batch
        checks.append(1)
        return len(checks) > 12

    inside = []
    records = list(evaluate(_config(tmp_path / "parts", [spec], attacks=["clean", "pgd50"]), should_stop=stop,
                            on_forward=inside.append))
    assert records[-1]["event"] == "cancelled" and not any(r["event"] == "done" for r in records)
    assert len(checks) == 13  # nothing ran after the first True
    assert inside and inside[-1]["attack"] == "pgd50" and inside[-1]["expected"] == 51
    assert [r["forwards"] for r in inside] == list(range(1, len(inside) + 1))  # one batch, cut short
    list(evaluate(_config(tmp_path / "parts", [spec], attacks=["clean", "pgd50"])))
    assert render_report(tmp_path / "parts") == render_report(tmp_path / "whole")
    assert whole[-1]["event"] == "done"


def test_records_carry_overall_progress_over_the_whole_plan(tmp_path, weights_file):
    specs = [ModelSpec("caw-test-tiny", str(weights_file)), TINY]
    records = [r for r in evaluate(_config(tmp_path, specs, datasets=["toy-shape", "toy-colour"]))
               if r["event"] != "done"]
    items = {r["items"] for r in records}
    assert items == {2 * 2 * 2}  # models x datasets x attacks
    assert sorted({r["item"] for r in records if r["event"] == "result"}) == list(range(1, 9))
    overall = [r["overall"] for r in records]
    assert overall == sorted(overall) and overall[-1] == pytest.approx(1.0) and overall[0] < 0.5
    assert any(r["overall_eta_s"] is not None for r in records if r["event"] == "progress")


def test_eps_file_names_are_exact_and_a_renamed_file_is_refused(tmp_path, capsys):
    one = ResultKey("m-1", "toy-shape", "pgd10", 1.0, "linf", 10, 0)
    assert one.filename() != ResultKey("m-1", "toy-shape", "pgd10", 1.0000001, "linf", 10, 0).filename()
    path = save_result(tmp_path, Result(one, {"label": "m"}, [0, 1], [True, False], complete=True))
    path.rename(tmp_path / ResultKey("m-1", "toy-shape", "pgd10", 2.0, "linf", 10, 0).filename())
    with pytest.raises(ResultsFileError, match="eps2.0.*renamed or copied"):
        load_results(tmp_path)
    assert main(["report", str(tmp_path)]) == 2
    assert "renamed or copied" in capsys.readouterr().err


@pytest.mark.parametrize("content, expected", [
    ("", "expected a caw results JSON file"),
    ("[1, 2]", "not a caw evaluation result"),
    (json.dumps({"kind": KIND, "format_version": 2, "key": {}}), "missing field key.model_id"),
    ("__WRONG_TYPES__", "indices: expected non-negative integers"),
])
def test_malformed_results_files_give_one_line_naming_the_file(tmp_path, capsys, content, expected):
    key = ResultKey("m-1", "toy-shape", "clean", 1.0, "linf", 10, 0)
    path = save_result(tmp_path, Result(key, {"label": "m"}, [0], [True], complete=True))
    if content == "__WRONG_TYPES__":
        payload = json.loads(path.read_text())
        payload["indices"] = "0"
        content = json.dumps(payload).replace('"indices": "0"', '"indices": ["zero"]')
    path.write_text(content)
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(path) in err[0] and expected in err[0] and "Traceback" not in err[0]


def test_a_fifo_in_the_results_folder_is_refused_without_reading_it(tmp_path):
    fifo = tmp_path / "stuck.json"
    os.mkfifo(fifo)  # opening it for reading would block forever
    with pytest.raises(ResultsFileError, match="stuck.json: expected a regular file"):
        load_results(tmp_path)


def test_other_json_and_older_formats_in_the_results_folder_are_skipped(tmp_path, caplog):
    (tmp_path / "table.json").write_text(json.dumps({"tables": [], "flags": []}))  # an exported report
    key = ResultKey("m-1", "toy-shape", "clean", 1.0, "linf", 10, 0)
    path = save_result(tmp_path, Result(key, {"label": "m"}, [0], [True], complete=True))
    payload = json.loads(path.read_text())
    path.write_text(json.dumps({**payload, "format_version": 1}))  # written by an older caw
    assert load_results(tmp_path) == []
    assert "skipped 1 result file(s) of an older caw format" in caplog.text


def test_an_empty_result_renders_without_dividing_by_zero(tmp_path):
    for attack in ("clean", "pgd10"):
        save_result(tmp_path, Result(ResultKey("m-1", "toy-shape", attack, 1.0, "linf", 10, 0), {"label": "m"}, [],
                                     [], complete=True))
    assert "0 images per dataset" in render_report(tmp_path)


def test_model_labels_cannot_inject_markup_or_formulas(tmp_path):
    label = "=HYPERLINK(\"http://x\")|<img src=x>*bold*"
    for attack, flags in (("clean", [True, True]), ("pgd10", [True, False])):
        key = ResultKey("m-1", "toy-shape", attack, 1.0, "linf", 10, 0)
        save_result(tmp_path, Result(key, {"label": label, "checkpoint": "x"}, [0, 1], flags, complete=True))
    report = build_report(load_results(tmp_path))
    csv_rows = to_csv(report).splitlines()
    assert all(",=HYPERLINK" not in row and not row.startswith("=") for row in csv_rows)
    assert any("'=HYPERLINK" in row for row in csv_rows)
    markdown = to_markdown(report)
    assert re.search(r"(?<!\\)<img", markdown) is None and "\\<img src=x\\>" in markdown and "\\|" in markdown and "\\*bold\\*" in markdown


def test_header_states_the_images_evaluated_and_the_protocol(tmp_path):
    list(evaluate(_config(tmp_path, [TINY], n=10 ** 9, attacks=["clean"])))
    markdown = render_report(tmp_path)
    assert "1000000000 images" not in markdown
    assert "## Protocol caw:" in markdown and "images per dataset (n 1000000000)" in markdown


@pytest.mark.parametrize("argv, message", [
    (["--eps", "inf"], "finite"),
    (["--eps", "nan"], "finite"),
    (["--eps", "-1"], "finite"),
    (["--models", "caw-test-tiny:none", "--checkpoint", "runs/x"], "cannot be combined with --checkpoint"),
])
def test_eval_refuses_bad_flags_with_one_line(tmp_path, capsys, argv, message):
    try:
        code = main(["eval", "--datasets", "toy-shape", "--out", str(tmp_path), "--device", "cpu", *argv])
    except SystemExit as exc:  # argparse's own exit for a bad flag value
        code = exc.code
    assert code == 2
    assert message in capsys.readouterr().err
    with pytest.raises(ValueError, match="finite"):
        EvalConfig(eps=math.inf).validate()
    with pytest.raises(ValueError, match="<= 255"):
        EvalConfig(eps=300).validate()
    with pytest.raises(ValueError, match="<= 1e"):
        EvalConfig(eps=1e308, norm="l2").validate()


def test_temporaries_left_by_a_killed_writer_are_removed(tmp_path):
    list(evaluate(_config(tmp_path, [TINY], attacks=["clean"])))
    (name,) = [p.name for p in tmp_path.glob("*.json")]
    leftover = tmp_path / f".{name}.k1ll3d.tmp"
    leftover.write_text("{")
    list(evaluate(_config(tmp_path, [TINY], attacks=["clean"], skip_existing=False)))
    assert not leftover.exists()


def test_protocol_presets_set_attacks_n_and_resolution(tmp_path, capsys):
    from caw_core.commands.eval import eval_config
    from caw_core.cli import build_parser

    args = build_parser().parse_args(["eval", "--protocol", "fare"])
    config = eval_config(args)
    assert config.attacks == ["clean", "aafare"] and config.n == 1000 and config.protocol == "fare"
    args = build_parser().parse_args(["eval", "--protocol", "tecoa", "--n", "50", "--attacks", "clean,cw"])
    config = eval_config(args)
    assert config.attacks == ["clean", "cw"] and config.n == 50
    tecoa = get_protocol("tecoa")
    assert tecoa.resize_for("cifar10", 224) == 0 and tecoa.resize_for("dtd", 224) == 256
    assert tecoa.resize_for("dtd", 64) == 73 and get_protocol("caw").resize_for("cifar10", 224) == 224
    seen = []
    wrapped = NativeResolution(lambda x: seen.append(x.shape) or x.mean(dim=(2, 3)), 224)
    wrapped(torch.rand(2, 3, 32, 32))
    assert seen == [torch.Size([2, 3, 224, 224])]


def test_check_masking_runs_the_integrity_checks_per_dataset(tmp_path, capsys):
    code = main(["eval", "--check-masking", "--model", "caw-test-tiny", "--pretrained", "none", "--datasets",
                 "toy-shape", "--batch-size", "8", "--eps", "8", "--out", str(tmp_path), "--device", "cpu"])
    out = capsys.readouterr().out
    assert code in (0, 1) and "toy-shape | 8 images" in out and "unbounded" in out
    assert list(tmp_path.glob("*.json")) == []  # a check, not a benchmark


def test_the_caw_protocol_feeds_the_model_exactly_the_default_preprocessing(tmp_path):
    from caw_core.data import load_dataset
    from caw_core.evaluate import prepare_dataset

    model = load_model("toy")
    data, indices, attacked = prepare_dataset(_config(tmp_path, ["toy"]), model, "toy-shape")
    default = load_dataset("toy-shape", tmp_path, image_size=model.image_size).data
    assert attacked is model
    for i in indices[:3]:
        assert torch.equal(data.data[i][0], default[i][0])
