"""The playground's gallery and presets: real photos with attribution, toy scenes, ImageNet classes."""

from __future__ import annotations

from pathlib import Path

import pytest
from gui_helpers import gui_settings, window  # noqa: F401  (fixtures)

pytestmark = pytest.mark.gui


def test_gallery_offers_the_attributed_photos_and_toy_scenes(window):
    view = window.playground
    gallery = view.gallery
    photos = [gallery.item(i).data(0x0100) for i in range(gallery.count())]  # Qt.UserRole
    real = [caption for caption in photos if caption.startswith("photo:")]
    assert len(real) == 4
    attribution = (Path(__file__).parents[1] / "caw_gui" / "resources" / "samples" / "ATTRIBUTION.md").read_text()
    for caption in real:
        assert caption.split()[1] in attribution  # every bundled photo has its licence written down
    picked = []
    gallery.picked.connect(lambda image, caption: picked.append((image, caption)))
    gallery._clicked(gallery.item(0))
    image, caption = picked[0]
    assert image.mode == "RGB" and min(image.size) > 200 and caption == real[0]
    assert gallery.count() > 4  # toy scenes follow


def test_imagenet_preset_fills_the_class_list(window):
    view = window.playground
    view._apply_preset("ImageNet")
    classes = [line for line in view.classes.toPlainText().splitlines() if line.strip()]
    assert len(classes) == 1000 and classes[0] == "tench"
