"""caw_core.playground: fresh weights after a run continues, cancel inside an attack, verdicts, model input."""

from __future__ import annotations

import blobs
import numpy as np
import pytest
import torch
from PIL import Image

from caw_core.models import ModelSpec, load_model
from caw_core.playground import (AttackCancelled, ModelCache, PlaygroundRequest, class_index, expected_forwards,
                                 run_playground)
from caw_core.train import Trainer

TINY = ModelSpec("caw-test-tiny", None)


def _blob_image(index: int = 0) -> Image.Image:
    from caw_core.data import load_dataset

    image, _ = load_dataset(blobs.NAME, split="test", image_size=32).data[index]
    return Image.fromarray((image.permute(1, 2, 0).numpy() * 255).astype(np.uint8))


def _request(**overrides) -> PlaygroundRequest:
    base = dict(image=_blob_image(), classnames=list(blobs.CLASSES), templates=["a {} picture."], attack="pgd",
                eps=4.0, steps=2)
    base.update(overrides)
    return PlaygroundRequest(**base)


def _tower(model) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.image_encoder.parameters()])


def test_cache_reloads_a_run_that_continued(tiny_train_config):
    """The stale-weights defect: same run folder, newer checkpoint -> the cache must hand out the new weights."""
    config = tiny_train_config(max_steps=2, save_every=1)
    list(Trainer(config).run())
    run_dir = f"{config.runs_dir}/{config.name}"
    spec = ModelSpec(TINY.name, None, run_dir)
    cache = ModelCache()
    before = _tower(cache.get(spec, "cpu"))
    assert torch.equal(_tower(cache.get(spec, "cpu")), before)  # unchanged run: served from the cache
    list(Trainer(tiny_train_config(max_steps=5, save_every=1), resume=True).run())
    after = _tower(cache.get(spec, "cpu"))
    assert not torch.equal(after, before)
    assert torch.equal(after, _tower(load_model(spec)))  # exactly the newest checkpoint's weights


def test_cancel_stops_a_long_autoattack_within_a_forward_pass(tiny_model):
    """should_stop turns true after 5 forwards of an AA with 1000 iterations: the attack ends right there."""
    calls = []
    tiny_model.register_forward_hook(lambda *args: calls.append(1))
    request = _request(attack="aa", steps=1000, eps=8.0)
    stop_after = 5
    records = run_playground(request, {"vanilla": tiny_model}, should_stop=lambda: len(calls) >= stop_after)
    seen = []
    with pytest.raises(AttackCancelled):
        for record in records:
            seen.append(record["event"])
    assert seen == ["input", "clean"]
    # the clean pass made 2 forwards; the attack is stopped before its next forward after the 5th
    assert stop_after <= len(calls) <= stop_after + 1
    assert expected_forwards("aa", 1000, 3) == 1000  # 3 classes: APGD-CE only


def test_progress_is_reported_for_every_forward(tiny_model):
    progress = []
    records = list(run_playground(_request(steps=3), {"vanilla": tiny_model}, on_progress=progress.append))
    assert records[-1]["event"] == "done"
    assert [p["forwards"] for p in progress] == list(range(1, len(progress) + 1)) and progress
    assert all(p["expected"] == 3 and p["crafted_on"] == "vanilla" for p in progress)


def test_zero_budget_finds_nothing_and_the_verdict_says_robust(tiny_model):
    records = list(run_playground(_request(eps=0.0), {"vanilla": tiny_model}))
    adversarial = next(r for r in records if r["event"] == "adversarial")
    assert adversarial["found_nothing"] and adversarial["linf"] == 0
    assert adversarial["verdict"] == {"vanilla": "robust"} and not adversarial["true_label"]


def test_true_label_gives_fooled_robust_or_wrong(tiny_model):
    clean = next(r for r in run_playground(_request(), {"vanilla": tiny_model}) if r["event"] == "clean")
    predicted = blobs.CLASSES.index(clean["predicted"]["vanilla"])
    wrong = (predicted + 1) % 3
    records = list(run_playground(_request(label=wrong), {"vanilla": tiny_model}))
    adversarial = next(r for r in records if r["event"] == "adversarial")
    assert adversarial["verdict"] == {"vanilla": "wrong"} and adversarial["label"] == blobs.CLASSES[wrong]
    strong = list(run_playground(_request(label=predicted, eps=64.0, steps=20), {"vanilla": tiny_model}))
    adversarial = next(r for r in strong if r["event"] == "adversarial")
    top = adversarial["topk"]["vanilla"][0][0]
    assert adversarial["verdict"]["vanilla"] == ("robust" if top == blobs.CLASSES[predicted] else "fooled")
    assert adversarial["true_label"] and 0 < adversarial["linf"] <= 64 / 255 + 1e-6


def test_transfer_crafts_once_and_judges_both(tiny_model):
    torch.manual_seed(1)
    other = load_model(TINY)
    records = list(run_playground(_request(source="vanilla"), {"vanilla": tiny_model, "finetuned": other}))
    adversarial = [r for r in records if r["event"] == "adversarial"]
    assert len(adversarial) == 1 and adversarial[0]["crafted_on"] == "vanilla"
    assert set(adversarial[0]["verdict"]) == set(adversarial[0]["topk"]) == {"vanilla", "finetuned"}


def test_the_model_input_is_described(tiny_model):
    wide = Image.fromarray(np.zeros((48, 64, 3), np.uint8))
    first = next(run_playground(_request(image=wide), {"vanilla": tiny_model}))
    assert first["event"] == "input" and first["image"].shape == (32, 32, 3) and first["original"] == (64, 48)
    assert "resized from 64×48 to the model input 32×32" in first["note"] and "centre-cropped" in first["note"]
    square = next(run_playground(_request(image=Image.fromarray(np.zeros((32, 32, 3), np.uint8))),
                                 {"vanilla": tiny_model}))
    assert square["note"] == ""


def test_bad_requests_and_class_names(tiny_model):
    with pytest.raises(ValueError, match="at least two"):
        list(run_playground(_request(classnames=["red"]), {"vanilla": tiny_model}))
    with pytest.raises(ValueError, match="unknown attack"):
        list(run_playground(_request(attack="fgsm"), {"vanilla": tiny_model}))
    assert class_index(blobs.CLASSES, "Green") == 1
    with pytest.raises(ValueError, match="did you mean 'green'"):
        class_index(blobs.CLASSES, "gren")
