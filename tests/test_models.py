"""The zero-shot wrapper, model sources and their errors."""

from __future__ import annotations

import pickle

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from caw_core.models import ModelLoadError, ModelSpec, load_model


def test_logits_are_100_times_cosine(tiny_model, blob_batch):
    images, _ = blob_batch
    with torch.no_grad():
        features = F.normalize(tiny_model.encode_image(images), dim=-1)
        expected = 100.0 * features @ tiny_model.text_head.t()
        assert torch.allclose(tiny_model(images), expected, atol=1e-4)


def test_text_head_is_built_once_per_class_list(tiny_model):
    calls = tiny_model.text_encoder_calls
    tiny_model.set_classes(["red", "green", "blue"], ["a {} picture."])
    tiny_model.set_classes(["red", "green", "blue"], ["a {} picture."])
    assert tiny_model.text_encoder_calls == calls
    tiny_model.set_classes(["cat", "dog"], ["a {} picture.", "a photo of a {}."])
    assert tiny_model.text_encoder_calls == calls + 1
    head = tiny_model.text_head
    assert head.shape[0] == 2
    assert torch.allclose(head.norm(dim=-1), torch.ones(2), atol=1e-5)


def test_images_of_any_size_are_resized_inside(tiny_model, blob_batch):
    images, _ = blob_batch
    big = F.interpolate(images, size=(64, 64), mode="nearest")
    assert tiny_model(big).shape == (len(images), 3)


def test_bad_template_is_refused(tiny_model):
    with pytest.raises(ValueError, match="template"):
        tiny_model.set_classes(["cat"], ["no placeholder"])


def test_unknown_architecture_lists_close_matches():
    with pytest.raises(ModelLoadError, match="ViT-B-32"):
        load_model(ModelSpec("ViT-B-33", None))


def test_unknown_pretrained_tag_says_how_to_pass_a_file():
    with pytest.raises(ModelLoadError, match="--pretrained"):
        load_model(ModelSpec("caw-test-tiny", "laion9000"))


def test_missing_weights_file_is_named(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(ModelSpec("caw-test-tiny", str(tmp_path / "nope.safetensors")))


def test_local_safetensors_weights_are_loaded(tmp_path, tiny_model, blob_batch):
    path = tmp_path / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in tiny_model.clip.state_dict().items()}, str(path))
    loaded = load_model(ModelSpec("caw-test-tiny", str(path)))
    loaded.set_classes(tiny_model.classnames, ["a {} picture."])
    images, _ = blob_batch
    with torch.no_grad():
        assert torch.allclose(loaded(images), tiny_model(images), atol=1e-4)


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):  # runs on unpickling: would create the marker file
        return (open, (str(self.marker), "w"))


def test_a_crafted_pickle_is_refused_and_its_payload_never_runs(tmp_path):
    marker = tmp_path / "payload-ran"
    path = tmp_path / "evil.pt"
    with open(path, "wb") as handle:
        pickle.dump({"state_dict": _Payload(marker)}, handle)
    with pytest.raises(ModelLoadError, match="weights_only"):
        load_model(ModelSpec("caw-test-tiny", str(path)))
    assert not marker.exists()


def test_openai_weights_are_built_with_the_quickgelu_they_were_trained_with(monkeypatch):
    """open_clip pairs ViT-B-32 + 'openai' with plain GELU unless told otherwise; caw must ask for QuickGELU."""
    import open_clip

    asked = {}

    def fake_create_model(name, pretrained=None, **kwargs):
        asked.update(kwargs, name=name, pretrained=pretrained)
        raise RuntimeError("offline")  # stop before any download

    monkeypatch.setattr(open_clip, "create_model", fake_create_model)
    with pytest.raises(ModelLoadError):
        load_model(ModelSpec("ViT-B-32", "openai"))
    assert asked["pretrained"] == "openai" and asked.get("force_quick_gelu") is True
