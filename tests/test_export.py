"""``caw-core export``: the full CLIP loads in stock open_clip (no caw import) with caw's logits."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import blobs
from caw_core.cli import main
from caw_core.export import CARD_FILE, CONFIG_FILE, WEIGHTS_FILE, export_model
from caw_core.models import ModelSpec, load_model
from caw_core.models.checkpoint import CheckpointError, TrainerState, save_checkpoint
from caw_core.models.loading import TEST_ARCH, TOY_ARCH
from caw_core.results import Result, ResultKey, save_result

CONFIGS = Path(__file__).parent.parent / "caw_core" / "models" / "model_configs"
CLASSES = ["red square", "green circle", "blue triangle"]
TEMPLATE = "a photo of a {}."

# Runs in a fresh interpreter that never imports caw: stock open_clip only.
OPEN_CLIP_SCRIPT = r"""
import json, sys
import open_clip, torch
import torch.nn.functional as F
from PIL import Image

arch, weights, folder, configs, classes, template, *images = sys.argv[1:]
open_clip.add_model_config(configs)
logits = {}
for how, (name, pretrained) in {"arch": (arch, weights), "local-dir": ("local-dir:" + folder, None)}.items():
    model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=pretrained)
    model.eval()
    tokenizer = open_clip.get_tokenizer(name)
    pixels = torch.stack([preprocess(Image.open(p)) for p in images])
    with torch.no_grad():
        image = F.normalize(model.encode_image(pixels), dim=-1)
        text = F.normalize(model.encode_text(tokenizer([template.format(c) for c in json.loads(classes)])), dim=-1)
    logits[how] = (100 * image @ text.T).tolist()
assert not any(m.startswith("caw") for m in sys.modules), "the check must not import caw"
print(json.dumps(logits))
"""


def _images(folder: Path, size: int, count: int = 4) -> tuple[list[Path], torch.Tensor]:
    """PNG files at the model's resolution and the same pixels as caw's [0, 1] tensors."""
    rng = np.random.default_rng(0)
    paths, tensors = [], []
    for i in range(count):
        pixels = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)
        path = folder / f"image_{i}.png"
        Image.fromarray(pixels).save(path)
        paths.append(path)
        tensors.append(torch.from_numpy(pixels).permute(2, 0, 1).float() / 255)
    return paths, torch.stack(tensors)


def _open_clip_logits(arch: str, folder: Path, images: list[Path]) -> dict[str, torch.Tensor]:
    out = subprocess.run(
        [sys.executable, "-c", OPEN_CLIP_SCRIPT, arch, str(folder / WEIGHTS_FILE), str(folder), str(CONFIGS),
         json.dumps(CLASSES), TEMPLATE, *map(str, images)],
        capture_output=True, text=True, timeout=300, env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr
    return {how: torch.tensor(values) for how, values in json.loads(out.stdout.splitlines()[-1]).items()}


def _caw_logits(spec: ModelSpec, images: torch.Tensor) -> torch.Tensor:
    model = load_model(spec).set_classes(CLASSES, [TEMPLATE])
    with torch.no_grad():
        return model(images)


def _assert_round_trip(export, spec: ModelSpec, tmp_path: Path) -> None:
    paths, images = _images(tmp_path, load_model(spec).image_size)
    expected = _caw_logits(spec, images)
    for how, logits in _open_clip_logits(export.arch, export.folder, paths).items():
        torch.testing.assert_close(logits, expected, atol=1e-4, rtol=1e-4, msg=f"open_clip via {how}")
    # and caw takes the exported file back as a base model (--model ARCH --pretrained FILE)
    torch.testing.assert_close(_caw_logits(ModelSpec(export.arch, str(export.weights), None), images), expected)


@pytest.fixture
def tiny_base(tmp_path) -> Path:
    """A caw-test-tiny CLIP with fixed random weights, saved as a local weights file (the base model)."""
    import open_clip
    from safetensors.torch import save_file

    from caw_core.models.loading import register_configs

    register_configs()
    torch.manual_seed(0)
    clip = open_clip.create_model(TEST_ARCH)
    path = tmp_path / "tiny_base.safetensors"
    save_file({k: v.contiguous() for k, v in clip.state_dict().items()}, str(path))
    return path


@pytest.mark.slow
def test_export_of_a_tiny_run_loads_in_stock_open_clip_with_caw_logits(tiny_train_config, tiny_base, tmp_path):
    from caw_core.train import Trainer

    config = tiny_train_config(pretrained=str(tiny_base), max_steps=2, save_every=2)
    for _ in Trainer(config).run():
        pass
    run = Path(config.runs_dir) / config.name
    export = export_model(run, tmp_path / "export")
    assert export.arch == TEST_ARCH
    spec = ModelSpec(TEST_ARCH, str(tiny_base), str(run))
    base_logits = _caw_logits(ModelSpec(TEST_ARCH, str(tiny_base), None), _images(tmp_path, 32)[1])
    assert not torch.allclose(_caw_logits(spec, _images(tmp_path, 32)[1]), base_logits), "training changed nothing"
    _assert_round_trip(export, spec, tmp_path)

    card = (export.folder / CARD_FILE).read_text()
    front = card.split("---")[1]
    assert "library_name: open_clip" in front and f"- {blobs.NAME}" in front and "- method-caw" in front
    assert "| method | caw |" in card and "arXiv" in card and "## Threat model" in card
    config_json = json.loads((export.folder / CONFIG_FILE).read_text())
    assert config_json["model_cfg"]["embed_dim"] == 32 and config_json["preprocess_cfg"]["size"] in (32, [32, 32])


def test_export_of_the_toy_model_loads_in_stock_open_clip(tmp_path):
    """A hand-made checkpoint of the embedded toy CLIP with a perturbed image tower."""
    model = load_model("toy")
    torch.manual_seed(1)
    with torch.no_grad():
        for p in model.image_encoder.parameters():
            p.add_(0.01 * torch.randn_like(p))
    state = TrainerState(step=1, epoch=0, optimizer={"state": {}, "param_groups": []}, rng={}, extra={})
    folder = save_checkpoint(tmp_path / "run" / "checkpoints", model.image_encoder,
                             {"name": "toy", "pretrained": None, "checkpoint": None}, state)
    export = export_model(folder, tmp_path / "export")
    assert export.arch == TOY_ARCH
    _assert_round_trip(export, ModelSpec("toy", None, str(folder)), tmp_path)
    # the documented eval command takes the export as its base model
    assert main(["eval", "--model", TOY_ARCH, "--pretrained", str(export.weights), "--datasets", "toy-shape",
                 "--attacks", "clean", "--n", "4", "--out", str(tmp_path / "results"), "--quiet"]) == 0


def test_export_refuses_a_random_base_and_bad_paths(tmp_path, capsys):
    model = load_model(TEST_ARCH)
    state = TrainerState(step=1, epoch=0, optimizer={"state": {}, "param_groups": []}, rng={}, extra={})
    folder = save_checkpoint(tmp_path / "checkpoints", model.image_encoder,
                             {"name": TEST_ARCH, "pretrained": None, "checkpoint": None}, state)
    with pytest.raises(CheckpointError, match="randomly initialized"):
        export_model(folder, tmp_path / "out")
    assert main(["export", str(tmp_path / "nothing-here"), "--out", str(tmp_path / "out")]) == 2
    assert "no caw checkpoint" in capsys.readouterr().err


def test_model_card_renders_the_results_table(tmp_path):
    model = load_model("toy")
    state = TrainerState(step=1, epoch=0, optimizer={"state": {}, "param_groups": []}, rng={}, extra={})
    folder = save_checkpoint(tmp_path / "run" / "checkpoints", model.image_encoder,
                             {"name": "toy", "pretrained": None, "checkpoint": None}, state)
    (tmp_path / "run" / "config.json").write_text(json.dumps({"method": "fare", "data": "toy-shape", "eps": 4.0,
                                                               "name": "run"}))
    results = tmp_path / "results"
    label = {"name": "toy", "pretrained": None, "checkpoint": str(folder), "label": "toy+run"}
    for attack, correct in (("clean", [True, True, True, False]), ("pgd10", [True, False, False, None])):
        save_result(results, Result(ResultKey("toy-run-1", "cifar10", attack, 4.0, "linf", 4, 0), label,
                                    [0, 1, 2, 3], correct, complete=True))
    assert main(["export", str(tmp_path / "run"), "--out", str(tmp_path / "out"), "--results", str(results),
                 "--quiet"]) == 0
    card = (tmp_path / "out" / CARD_FILE).read_text()
    evaluation = card[card.index("## Evaluation"):card.index("## Threat model")]
    assert any(line.startswith("### ") and "eps 4/255" in line for line in evaluation.splitlines())  # one level down
    assert "ERROR" not in evaluation
    assert "| toy+run | 75.00 | 75.00 |" in card  # clean: 3 of 4
    assert "| toy+run | 25.00 | 25.00 |" in card  # robust (worst case over pgd10): 1 of 4
    assert "| method | fare |" in card and "| eps (x/255) | 4.0 |" in card and "- toy-shape" in card


def test_a_quickgelu_model_is_exported_under_its_quickgelu_name(tmp_path):
    """OpenAI weights run QuickGELU; stock open_clip's plain name would rebuild them with GELU."""
    import open_clip

    from caw_core.export import open_clip_name

    assert open_clip_name(open_clip.create_model("ViT-B-32-quickgelu"), "ViT-B-32") == "ViT-B-32-quickgelu"
    assert open_clip_name(open_clip.create_model("ViT-B-32"), "ViT-B-32") == "ViT-B-32"
