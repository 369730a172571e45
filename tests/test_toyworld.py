"""The toy world: deterministic scenes, honest captions, task datasets, the toy CLIP."""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch
from safetensors.torch import load_file

from caw_core.data import load_dataset, toyworld as tw
from caw_core.data.toy_tasks import TASKS

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "caw_core" / "resources" / "toy_clip.safetensors"
CONFIGS = ROOT / "caw_core" / "models" / "model_configs"


def test_scenes_are_a_pure_function_of_seed_and_index():
    batch = tw.render_uint8(tw.sample_scenes(7, [0, 1, 2, 3]))
    again = tw.render_uint8(tw.sample_scenes(7, [0, 1, 2, 3]))
    alone = tw.render_uint8(tw.sample_scenes(7, [2]))
    assert batch.shape == (4, 64, 64, 3) and batch.dtype == np.uint8
    np.testing.assert_array_equal(batch, again)
    np.testing.assert_array_equal(batch[2], alone[0])  # random access
    assert not np.array_equal(batch[0], batch[1])
    assert not np.array_equal(batch[0], tw.render_uint8(tw.sample_scenes(8, [0]))[0])


def test_every_attribute_value_occurs_and_scenes_vary():
    scenes = tw.sample_scenes(3, range(400))
    for attribute, values in tw.ATTRIBUTES.items():
        assert set(scenes.labels(attribute)) == set(range(len(values))), attribute
    images = tw.render(scenes)
    assert 0.0 <= images.min() and images.max() <= 1.0
    assert images.reshape(400, -1).std(1).min() > 0.02  # no blank scenes


def test_full_caption_names_every_attribute():
    scenes = tw.sample_scenes(0, range(20))
    for i in range(20):
        text = tw.caption(scenes, i)
        for attribute, values in tw.ATTRIBUTES.items():
            assert values[scenes.labels(attribute)[i]] in text, (attribute, text)


def test_pretraining_captions_drop_attributes_but_name_what_they_keep():
    scenes = tw.sample_scenes(0, range(300))
    captions, keep = tw.pretraining_captions(scenes, 0, range(300))
    assert 0.1 < keep[:, 1:].mean() < 0.9 and keep[:, 0].mean() > keep[:, 1:].mean()
    assert len(set(captions)) > 50
    for i in range(300):
        for k, (attribute, values) in enumerate(tw.ATTRIBUTES.items()):
            if keep[i, k]:
                assert values[scenes.labels(attribute)[i]] in captions[i]
        if not keep[i, 0]:
            assert " shape" in captions[i]
    again, _ = tw.pretraining_captions(scenes, 0, range(300))
    assert again == captions


def test_held_out_compositions_never_occur_in_pretraining_stream():
    from caw_core.toy.pretrain import PRETRAIN_STREAM

    seen = tw.sample_scenes(PRETRAIN_STREAM, range(3000), composition="seen")
    assert not seen.is_held_out().any()
    pairs = {(tw.COLOURS[c], tw.TEXTURES[t]) for c, t in zip(seen.colour, seen.texture)}
    assert pairs.isdisjoint(tw.HELD_OUT_PAIRS)
    assert len(pairs) == len(tw.COLOURS) * len(tw.TEXTURES) - len(tw.HELD_OUT_PAIRS)
    test = load_dataset("toy-texture", split="test", image_size=64).data
    assert tw.sample_scenes(test.seed, range(len(test)), test.composition).is_held_out().mean() > 0.1


def test_multi_positive_targets_follow_the_captions():
    from caw_core.toy.pretrain import batch_targets

    labels = np.array([[0, 1, 2, 0, 3], [0, 2, 2, 1, 3], [1, 1, 0, 0, 0]])
    keep = np.array([[True, False, False, False, False], [True, True, True, True, True], [False] * 5])
    positives = batch_targets(labels, keep)
    # caption 0 names shape 0 (images 0, 1); caption 1 only fits image 1; caption 2 fits all
    expected = torch.tensor([[1, 0, 1], [1, 1, 1], [0, 0, 1]], dtype=torch.float32)
    torch.testing.assert_close(positives, expected)


@pytest.mark.parametrize("task", tw.TOY_TASKS)
def test_task_datasets_through_the_registry(task):
    ds = load_dataset(task, split="test", image_size=64)
    attribute = TASKS[task][0]
    assert ds.classnames == list(tw.ATTRIBUTES[attribute]) and len(ds) == 1000
    assert all("{}" in t for t in ds.templates)
    image, label = ds.data[5]
    assert image.shape == (3, 64, 64) and image.dtype == torch.float32
    assert 0.0 <= image.min() and image.max() <= 1.0
    expected = tw.sample_scenes(2, [5]).labels(attribute)[0]
    assert label == expected
    ref = torch.from_numpy(tw.render_uint8(tw.sample_scenes(2, [5]))[0]).permute(2, 0, 1) / 255.0
    torch.testing.assert_close(image, ref)
    train = load_dataset(task, split="train", image_size=32)
    assert len(train) == 20_000 and train.data[5][0].shape == (3, 32, 32)
    assert tw.TOY_TRAIN_TASK in tw.TOY_TASKS


@pytest.fixture(scope="module")
def committed_accuracy() -> dict:
    """Zero-shot accuracy per task of the committed weights on 300 test scenes, plain open_clip calls."""
    open_clip.add_model_config(CONFIGS)
    model = open_clip.create_model("caw-toy-vit", load_weights=False)
    model.load_state_dict({k: v.float() for k, v in load_file(str(WEIGHTS)).items()})
    model.eval()
    tokenizer = open_clip.get_tokenizer("ViT-B-32", context_length=20)
    cfg = open_clip.get_model_preprocess_cfg(model)
    mean, std = torch.tensor(cfg["mean"]).view(3, 1, 1), torch.tensor(cfg["std"]).view(3, 1, 1)
    n = 300
    ds = load_dataset("toy-shape", split="test", image_size=64)
    images = torch.stack([ds.data[i][0] for i in range(n)])
    scenes = tw.sample_scenes(2, range(n))
    accuracy = {}
    with torch.no_grad():
        image_f = model.encode_image((images - mean) / std, normalize=True)
        for task, (attribute, _, templates) in TASKS.items():
            text_f = torch.stack([  # prompt ensemble: mean of normalised template embeddings
                torch.nn.functional.normalize(
                    model.encode_text(tokenizer([t.format(c) for t in templates]), normalize=True).mean(0), dim=-1
                )
                for c in tw.ATTRIBUTES[attribute]
            ])
            predicted = (image_f @ text_f.T).argmax(1).numpy()
            accuracy[task] = float((predicted == scenes.labels(attribute)).mean())
    return accuracy


@pytest.mark.parametrize("task", tw.TOY_TASKS)
def test_committed_toy_clip_is_zero_shot_well_above_chance(committed_accuracy, task):
    chance = 1 / len(tw.ATTRIBUTES[TASKS[task][0]])
    assert committed_accuracy[task] > chance + 0.2 * (1 - chance), committed_accuracy
    if task == tw.TOY_TRAIN_TASK:  # the fine-tuning task must start out learned well
        assert committed_accuracy[task] >= 0.8, committed_accuracy


def test_committed_card_matches_weights(committed_accuracy):
    card = json.loads(WEIGHTS.with_suffix(".json").read_text())
    assert card["weights_sha256"] == hashlib.sha256(WEIGHTS.read_bytes()).hexdigest()
    for task, acc in committed_accuracy.items():  # 300 of the card's 1000 scenes: within sampling noise
        assert abs(acc - card["zero_shot"]["tasks"][task]["accuracy"]) < 0.1, (task, acc)


def test_pretrain_smoke_writes_weights_and_card(tmp_path):
    from caw_core.cli import main
    from caw_core.toy import load_toy_clip

    args = ["toy", "pretrain", "--steps", "2", "--seed", "0", "--out", str(tmp_path), "--batch-size", "16",
            "--lr", "1e-3", "--threads", "1", "--eval-every", "0", "--print-every", "1"]
    assert main(args) == 0
    card = json.loads((tmp_path / "toy_clip.json").read_text())
    assert card["steps"] == 2 and card["config"]["seed"] == 0 and "--steps 2" in card["command"]
    assert set(card["zero_shot"]["tasks"]) == set(tw.TOY_TASKS)
    model = load_toy_clip(tmp_path / "toy_clip.safetensors")
    assert sum(p.numel() for p in model.visual.parameters()) < 2_000_000


def test_sample_grid(tmp_path):
    from PIL import Image

    from caw_core.commands import toy

    out = tmp_path / "grid.png"
    assert toy.run(argparse.Namespace(toy_command="sample", out=str(out), n=8, split="test")) == 0
    assert Image.open(out).size[0] > 4 * 64


def test_zero_shot_accuracy_leaves_a_training_model_trainable():
    """Pretraining evaluates mid-run: the models/ wrapper must not freeze the text tower or change the ViT's outputs."""
    from caw_core.toy import create_toy_clip, toy_tokenizer
    from caw_core.toy.zeroshot import zero_shot_accuracy

    torch.manual_seed(0)
    clip = create_toy_clip().train()
    trainable = [name for name, p in clip.named_parameters() if p.requires_grad]
    assert any(name.startswith("transformer.") for name in trainable)  # the text tower
    results = zero_shot_accuracy(clip, toy_tokenizer(), n=8)
    assert set(results) == set(tw.TOY_TASKS) and clip.training
    assert [name for name, p in clip.named_parameters() if p.requires_grad] == trainable
    assert clip.encode_image(torch.zeros(1, 3, 64, 64)).shape == (1, 64)


def test_pretrain_writes_to_a_user_folder_by_default_never_into_the_package():
    import caw_core
    from caw_core.toy.pretrain import RESOURCES, PretrainConfig, default_out_dir

    package = Path(caw_core.__file__).resolve().parent
    out = Path(PretrainConfig().out_dir).resolve()
    assert out == default_out_dir().resolve() and package not in out.parents and out != package
    assert "--out" not in PretrainConfig().command()
    assert PretrainConfig(out_dir=str(RESOURCES)).command().endswith(" --out caw_core/resources")


def test_pretrain_help_says_how_to_replace_the_embedded_weights(capsys):
    from caw_core.cli import main

    with pytest.raises(SystemExit):
        main(["toy", "pretrain", "--help"])
    assert "--out caw_core/resources replaces the embedded weights" in " ".join(capsys.readouterr().out.split())
