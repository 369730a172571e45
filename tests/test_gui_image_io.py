"""caw_gui.image_io: every odd input decodes to RGB with a note; every broken one raises a clear ImageLoadError."""

from __future__ import annotations

import re

import numpy as np
import pytest
from gui_images import bad_files, noise_png, odd_files
from PIL import Image

from caw_gui.image_io import ImageLoadError, amplified_perturbation, load_image, save_adversarial


@pytest.mark.parametrize("case", ["zero-byte", "not an image", "truncated", "corrupt", "bomb", "huge", "folder"])
def test_broken_inputs_raise_clear_errors(tmp_path, case):
    path, phrase = bad_files(tmp_path)[case]
    with pytest.raises(ImageLoadError, match=re.escape(phrase)):
        load_image(path)


@pytest.mark.parametrize("case", ["16-bit", "CMYK", "palette", "alpha", "animated", "exif"])
def test_odd_inputs_become_rgb_with_a_note(tmp_path, case):
    path, phrase = odd_files(tmp_path)[case]
    loaded = load_image(path)
    assert loaded.image.mode == "RGB"
    assert any(phrase in note for note in loaded.notes), loaded.notes


def test_conversions_keep_the_content(tmp_path):
    files = odd_files(tmp_path)
    assert load_image(files["exif"][0]).image.size == (20, 40)  # rotated upright
    assert load_image(files["animated"][0]).image.getpixel((5, 5)) == (255, 0, 0)  # first frame
    assert load_image(files["alpha"][0]).image.getpixel((5, 5)) == (255, 255, 255)  # transparent -> white
    grey = np.asarray(load_image(files["16-bit"][0]).image)
    assert grey.max() == 255 and grey.min() == 0  # the 16-bit range is scaled, not clipped


def test_bytes_and_plain_rgb(tmp_path):
    path = noise_png(tmp_path / "ok.png")
    from_file, from_bytes = load_image(path), load_image(path.read_bytes())
    assert from_file.notes == [] and np.array_equal(np.asarray(from_file.image), np.asarray(from_bytes.image))


def test_save_adversarial_is_lossless(tmp_path):
    rng = np.random.default_rng(0)
    adversarial = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    delta = rng.uniform(-4 / 255, 4 / 255, (16, 16, 3)).astype(np.float32)
    written = save_adversarial(tmp_path / "adv.jpg", adversarial, delta)
    assert written[0].suffix == ".png"
    assert np.array_equal(np.asarray(Image.open(written[0])), adversarial)
    assert np.array_equal(np.load(written[1]), delta)
    picture, factor = amplified_perturbation(delta)
    assert factor >= 30 and written[2].name == f"adv_perturbation_x{factor}.png"
    assert picture.dtype == np.uint8 and 245 <= int(picture.max()) <= 255  # the largest change spans ~half the range


def test_devices_and_pipes_are_refused_without_reading(tmp_path):
    import os

    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    for path in ("/dev/zero", fifo):  # /dev/zero would be read until memory runs out; a pipe blocks forever
        with pytest.raises(ImageLoadError, match="not a regular file"):
            load_image(path)
