"""The playground's gallery and presets: toy scenes with the toy model, attributed photos with a real CLIP."""

from __future__ import annotations

from pathlib import Path

import pytest
from gui_helpers import gui_settings, window  # noqa: F401  (fixtures)

from caw_core.data import toyworld as tw
from caw_gui.widgets.gallery import SampleGallery

pytestmark = pytest.mark.gui


def test_a_real_clip_gets_the_attributed_photos(window):
    gallery = window.playground.gallery  # the tests' base model is a (random) real CLIP architecture
    assert gallery.kind == "photo" and gallery.count() == 4
    captions = [gallery.item(i).data(0x0100) for i in range(gallery.count())]  # Qt.UserRole
    attribution = (Path(__file__).parents[1] / "caw_gui" / "resources" / "samples" / "ATTRIBUTION.md").read_text()
    for caption in captions:
        assert caption.startswith("photo:") and caption.split()[1] in attribution  # every licence written down
    picked = []
    gallery.picked.connect(lambda *args: picked.append(args))
    gallery._clicked(gallery.item(0))
    image, caption, labels = picked[0]
    assert image.mode == "RGB" and min(image.size) > 200 and caption == captions[0] and labels == {}
    assert window.playground.preset.currentText() == "ImageNet"


def test_toy_scenes_carry_their_true_labels(qtbot):
    gallery = SampleGallery("toy")
    qtbot.addWidget(gallery)
    assert gallery.count() == 12 and all(gallery.item(i).data(0x0100).startswith("a photo of") for i in range(12))
    picked = []
    gallery.picked.connect(lambda *args: picked.append(args))
    gallery._clicked(gallery.item(5))
    _, caption, labels = picked[0]
    scene = tw.sample_scenes(2, [5])
    assert set(labels) == set(tw.ATTRIBUTES)
    assert labels["colour"] == tw.COLOURS[scene.colour[0]] and labels["colour"] in caption
    gallery.show_kind("photo")
    assert gallery.count() == 4
    with pytest.raises(ValueError, match="kind must be one of"):
        gallery.show_kind("astronaut")


def test_imagenet_preset_fills_the_class_list(window):
    view = window.playground
    view._apply_preset("ImageNet")
    classes = [line for line in view.classes.toPlainText().splitlines() if line.strip()]
    assert len(classes) == 1000 and classes[0] == "tench"
