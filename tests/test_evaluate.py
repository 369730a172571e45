"""Evaluation: attacks (CW, AutoAttack), the resumable benchmark loop, the results store and the report.

Everything runs on the random ``caw-test-tiny`` CLIP (32 px) and two small
synthetic datasets registered here (10 and 3 classes; random images, random
labels), so a whole benchmark takes seconds on a CPU.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file
from torch.utils.data import Dataset

import caw_core.evaluate as evaluate_module
from caw_core.attacks.autoattack import autoattack
from caw_core.attacks.cw import cw_margin_per_example, cw_pgd
from caw_core.attacks.registry import attack_images, parse_attack
from caw_core.attacks.autoattack import autoattack_attacks, build_autoattack
from caw_core.cli import main
from caw_core.data import DatasetSpec, UnknownDatasetError, get_spec, register
from caw_core.evaluate import EvalConfig, evaluate, subset_indices
from caw_core.models import ModelSpec, load_model
from caw_core.report import build_report, render_report
from caw_core.results import Result, ResultKey, load_result, load_results, save_result

EPS = 1 / 255
SIZE = 32
MODEL = ModelSpec("caw-test-tiny", pretrained=None)
DATASETS = {"test-eval-ten": 10, "test-eval-three": 3}


class NoiseImages(Dataset):
    """``size`` random RGB images (seeded by index) with random labels in ``range(classes)``."""

    def __init__(self, size: int, classes: int, transform):
        self.size, self.classes, self.transform = size, classes, transform

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, index: int):
        rng = np.random.default_rng(index)
        image = Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8))
        return self.transform(image), int(rng.integers(self.classes))


def _register(name: str, classes: int) -> None:
    try:
        get_spec(name)
    except UnknownDatasetError:
        register(DatasetSpec(
            name=name, display_name=name.upper(), templates=("a photo of a {}.",), expected_layout="(generated)",
            missing_files=lambda root: [], synthetic=True, family="test",
            build=lambda root, split, transform, c=classes: (NoiseImages(40, c, transform),
                                                             [f"class {i}" for i in range(c)])))


for _name, _classes in DATASETS.items():
    _register(_name, _classes)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = load_model(MODEL)
    return m.set_classes([f"class {i}" for i in range(10)], ["a photo of a {}."])


def _images(n: int = 8) -> torch.Tensor:
    images = torch.rand(n, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    images[:, 0, :4] = 0.0  # pixels at the box edges: the attack must not leave [0, 1]
    images[:, 1, :4] = 1.0
    return images


def _config(out: Path, **overrides) -> EvalConfig:
    values = dict(models=[MODEL], datasets=list(DATASETS), attacks=["clean", "pgd", "aa2"], n=10, batch_size=4,
                  out=str(out), device="cpu", data_root=str(out / "data"))
    values.update(overrides)
    return EvalConfig(**values)


def _run(config: EvalConfig) -> list[dict]:
    torch.manual_seed(0)  # caw-test-tiny has random weights: the same ones on every run
    return list(evaluate(config))


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A results folder of one uninterrupted run of :func:`_config`."""
    out = tmp_path_factory.mktemp("finished")
    _run(_config(out))
    return out


@pytest.fixture
def results_copy(finished, tmp_path) -> Path:
    shutil.copytree(finished, tmp_path / "results")
    return tmp_path / "results"


def _snapshot(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(folder.glob("*.json"))}


# --- attacks -----------------------------------------------------------------------------------------------


def test_cw_margin_is_best_other_logit_minus_true_logit():
    logits = torch.tensor([[3.0, 1.0, 2.0], [0.0, 5.0, -1.0]])
    assert cw_margin_per_example(logits, torch.tensor([0, 2])).tolist() == [-1.0, 6.0]


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_cw_and_autoattack_stay_in_the_ball_and_in_range(model, norm):
    images = _images()
    labels = model(images).argmax(dim=1)
    eps = EPS if norm == "linf" else 0.5
    for adv in (cw_pgd(model, images, labels, eps, eps / 4, 5, norm=norm),
                autoattack(model, images, labels, eps, norm=norm, steps=3)):
        delta = (adv - images).flatten(1)
        size = delta.abs().max(dim=1).values if norm == "linf" else delta.norm(dim=1)
        assert size.max() <= eps * (1 + 1e-4)
        assert adv.min() >= 0 and adv.max() <= 1
        assert adv.dtype == torch.float32


def test_autoattack_targets_and_small_tasks(model, tmp_path):
    assert autoattack_attacks(10) == ["apgd-ce", "apgd-t"]
    assert autoattack_attacks(3) == ["apgd-ce"]
    assert build_autoattack(model, 5, EPS, "linf", 3, 0, torch.device("cpu")).apgd_targeted.n_target_classes == 4
    assert build_autoattack(model, 100, EPS, "linf", 3, 0, torch.device("cpu")).apgd_targeted.n_target_classes == 9
    three = load_model(MODEL).set_classes(["a", "b", "c"], ["{}"])
    images = _images(4)
    state = tmp_path / "aa-state.json"
    adv = autoattack(three, images, three(images).argmax(dim=1), EPS, steps=2, state_path=state)
    assert adv.shape == images.shape
    assert json.loads(state.read_text())["_run_attacks"] == ["apgd-ce"]


def test_autoattack_leaves_the_global_rng_alone(model):
    images = _images(4)
    labels = model(images).argmax(dim=1)
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    autoattack(model, images, labels, EPS, steps=2, seed=7)
    assert torch.equal(torch.rand(3), expected)


def test_attacks_weaken_a_model_that_is_not_robust(model):
    images = _images(8)
    labels = model(images).argmax(dim=1)  # clean accuracy 100% by construction

    def accuracy(name: str) -> float:
        with torch.no_grad():
            return (model(attack_images(name, model, images, labels, 2 * EPS)).argmax(dim=1) == labels).float().mean()

    clean, pgd10, aa = accuracy("clean"), accuracy("pgd"), accuracy("aa5")
    assert clean == 1.0
    assert pgd10 < clean
    assert aa <= pgd10


def test_attack_names_parse():
    assert parse_attack("pgd") == ("pgd", 10)
    assert parse_attack("PGD100") == ("pgd", 100)
    assert parse_attack("aa") == ("aa", 100)
    assert parse_attack("clean") == ("clean", None)
    for bad in ("fgsm", "clean3", "pgd0"):
        with pytest.raises(ValueError):
            parse_attack(bad)


# --- evaluation loop and results store ------------------------------------------------------------------------


def test_subset_depends_on_seed_dataset_and_n_only():
    a = subset_indices(0, "cifar10", 50, 10_000)
    assert a == subset_indices(0, "cifar10", 50, 10_000) and a == sorted(a) and len(set(a)) == 50
    assert a != subset_indices(1, "cifar10", 50, 10_000)
    assert a != subset_indices(0, "stl10", 50, 10_000)
    assert subset_indices(0, "cifar10", "all", 7) == list(range(7))
    assert subset_indices(0, "cifar10", 100, 7) == list(range(7))


def test_result_json_round_trips(tmp_path):
    key = ResultKey("toy-1234", "cifar10", "aa100", 1.0, "linf", 1000, 0)
    result = Result(key, {"name": "toy", "pretrained": None, "checkpoint": None, "label": "toy"}, [3, 5, 9],
                    [True, False, None], complete=True, seconds=1.5, config={"eps": 1.0}, versions={"caw": "x"})
    path = save_result(tmp_path, result)
    loaded = load_result(path)
    assert loaded == result
    assert loaded.accuracy == pytest.approx(1 / 3)
    assert json.loads(path.read_text())["accuracy"] == pytest.approx(1 / 3)


def test_run_writes_worst_case_flags_and_a_rerun_does_no_work(results_copy, monkeypatch):
    tmp_path = results_copy
    results = {(r.key.dataset, r.key.attack): r for r in load_results(tmp_path)}
    assert set(results) == {(d, a) for d in DATASETS for a in ("clean", "pgd10", "aa2")}
    for dataset in DATASETS:
        clean, pgd, aa = (results[(dataset, a)] for a in ("clean", "pgd10", "aa2"))
        assert all(r.complete for r in (clean, pgd, aa)) and clean.indices == pgd.indices == aa.indices
        assert None not in clean.correct
        # each attack ran on exactly the images still correct before it
        assert [c is not None for c in pgd.correct] == clean.correct
        assert [c is not None for c in aa.correct] == [c is True for c in pgd.correct]
        assert aa.accuracy <= pgd.accuracy <= clean.accuracy
        assert aa.versions["pyautoattack"] and aa.config["eps"] == 1.0

    before = _snapshot(tmp_path)
    calls = []
    monkeypatch.setattr(evaluate_module, "attack_images", lambda *a, **k: calls.append(a) or a[2])
    rerun = _run(_config(tmp_path))
    assert calls == []
    assert _snapshot(tmp_path) == before
    final = [r for r in rerun if r["event"] == "result" and r["attack"] == "aa2"]
    assert all(r["reused"] for r in rerun if r["event"] == "result")
    assert [r["robust_accuracy"] for r in final] == [results[(d, "aa2")].accuracy for d in DATASETS]


def test_interrupted_run_resumes_to_the_same_table(finished, tmp_path):
    whole, parts = finished, tmp_path / "parts"

    # stop between datasets, then stop again in the middle of an attack (after its first batch)
    for stop in (lambda r: r["event"] == "dataset" and r["dataset"] == "test-eval-three",
                 lambda r: r["event"] == "progress" and r["attack"] == "clean"):
        torch.manual_seed(0)
        run = evaluate(_config(parts))
        for record in run:
            if stop(record):
                break
        run.close()
    partial = [r for r in load_results(parts) if not r.complete]
    assert [(r.key.dataset, r.key.attack) for r in partial] == [("test-eval-three", "clean")]
    assert "interrupted" in render_report(parts)

    _run(_config(parts))
    assert render_report(parts) == render_report(whole)
    assert render_report(parts, "json") == render_report(whole, "json")


def test_eval_cli_runs_and_prints_the_table(tmp_path, capsys):
    torch.manual_seed(0)
    code = main(["eval", "--model", "caw-test-tiny", "--pretrained", "none", "--datasets", "test-eval-ten",
                 "--attacks", "clean,pgd2", "--n", "6", "--batch-size", "4", "--out", str(tmp_path), "--device",
                 "cpu", "--quiet"])
    assert code == 0
    out = capsys.readouterr().out
    assert "| caw-test-tiny/random | " in out and "TEST-EVAL-TEN" in out and "Avg" in out
    assert len(list(tmp_path.glob("*.json"))) == 2
    assert main(["eval", "--datasets", "no-such-set", "--out", str(tmp_path)]) == 2


# --- report -------------------------------------------------------------------------------------------------


def test_report_table_and_sanity_flags(results_copy, capsys):
    tmp_path = results_copy
    honest = build_report(load_results(tmp_path))
    assert [f for f in honest.flags if f["level"] == "error"] == []
    markdown = render_report(tmp_path)
    assert "Avg" in markdown and "TEST-EVAL-TEN" in markdown and "worst case" in markdown
    assert "all passed" in markdown or "WARNING" in markdown

    # craft inconsistent results: PGD "keeps" images clean accuracy misclassified, AutoAttack skips a survivor;
    # on the other set a vanilla model that nothing breaks (every flag True)
    for result in load_results(tmp_path):
        if result.key.dataset == "test-eval-ten" and result.key.attack == "pgd10":
            result.correct = [True] * len(result.correct)
        elif result.key.dataset == "test-eval-ten" and result.key.attack == "aa2":
            result.correct = [None] * len(result.correct)
        elif result.key.dataset == "test-eval-three":
            result.correct = [True] * len(result.correct)
        save_result(tmp_path, result)
    messages = [f["message"] for f in build_report(load_results(tmp_path)).flags]
    assert any("test-eval-ten: pgd10 has results for" in m and "clean accuracy misclassified" in m for m in messages)
    assert any("test-eval-ten: aa2 left" in m and "unattacked" in m for m in messages)
    assert any("test-eval-three: vanilla model keeps 100.00% after aa2" in m for m in messages)
    assert not any("exceeds" in m for m in messages)  # the chain cannot let AA exceed PGD: no such check
    markdown = render_report(tmp_path)
    assert "after the chain clean → pgd10 → aa2" in markdown

    assert main(["report", str(tmp_path), "--format", "csv", "--out", str(tmp_path / "table.csv")]) == 0
    csv_text = (tmp_path / "table.csv").read_text()
    assert csv_text.splitlines()[0].endswith("test-eval-ten,test-eval-three,avg,protocol")
    assert "# error: " in csv_text
    assert main(["report", str(tmp_path / "missing")]) == 2


@pytest.mark.slow
def test_torchrun_shards_images_and_rank_zero_writes(model, tmp_path):
    """Two gloo ranks give the same per-image clean flags as one process; every image is filled, once."""
    weights = tmp_path / "tiny.safetensors"  # one random init for every process
    save_file({k: v.contiguous() for k, v in model.clip.state_dict().items()}, str(weights))
    args = ["-m", "caw_core.cli", "eval", "--model", "caw-test-tiny", "--pretrained", str(weights), "--datasets",
            "toy-shape", "--attacks", "clean,pgd2", "--images", "10", "--batch-size", "3", "--device", "cpu", "--quiet"]
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).parents[1]))
    for launcher, out in (([], "single"), (["-m", "torch.distributed.run", "--nproc-per-node", "2",
                                              "--master-port", "29531"], "ranks")):
        done = subprocess.run([sys.executable, *launcher, *args, "--out", str(tmp_path / out)], env=env,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
    single, ranks = ({r.key.attack: r for r in load_results(tmp_path / out)} for out in ("single", "ranks"))
    assert set(single) == set(ranks) == {"clean", "pgd2"}
    assert ranks["clean"].correct == single["clean"].correct and None not in ranks["clean"].correct
    assert [c is not None for c in ranks["pgd2"].correct] == ranks["clean"].correct
    assert ranks["pgd2"].complete
    assert sorted(p.name for p in (tmp_path / "ranks").iterdir()) == sorted(
        p.name for p in (tmp_path / "single").iterdir())  # no leftover temporary files from a second writer
