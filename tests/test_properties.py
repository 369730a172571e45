"""Property-based tests (hypothesis) of the two places untrusted input enters caw.

1. Image loading (``caw_core.data.images.load_image``): any bytes -> an RGB
   image or an ``ImageLoadError``, never another exception; every Pillow mode
   and bit depth comes out as 8-bit RGB of the right size.
2. ``caw-core train`` flags: any values -> a valid ``TrainConfig`` or a clean
   exit 2 with a one-line message, never a traceback.
"""

from __future__ import annotations

import contextlib
import io
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from caw_core.data.images import MAX_PIXELS, ImageLoadError, load_image, load_image_with_notes

FAST = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


# (mode, numpy dtype for random pixels or None for Image.new, formats that store the mode)
MODES = {
    "RGB": (np.uint8, 3, ["PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF"]),
    "RGBA": (np.uint8, 4, ["PNG", "WEBP", "TIFF"]),
    "L": (np.uint8, 1, ["PNG", "JPEG", "BMP", "TIFF"]),
    "LA": (np.uint8, 2, ["PNG", "TIFF"]),
    "I;16": (np.uint16, 1, ["PNG", "TIFF"]),
    "I": (np.int32, 1, ["TIFF"]),
    "F": (np.float32, 1, ["TIFF"]),
    "CMYK": (np.uint8, 4, ["JPEG", "TIFF"]),
    "P": (np.uint8, 1, ["PNG", "GIF", "BMP"]),
    "1": (np.bool_, 1, ["PNG", "BMP", "TIFF"]),
}


@st.composite
def encoded_images(draw):
    mode = draw(st.sampled_from(sorted(MODES)))
    dtype, channels, formats = MODES[mode]
    fmt = draw(st.sampled_from(formats))
    width = draw(st.integers(1, 40))
    height = draw(st.integers(1, 40))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    shape = (height, width) if channels == 1 else (height, width, channels)
    if dtype is np.float32:
        pixels = rng.normal(0, draw(st.sampled_from([1.0, 1000.0])), shape).astype(np.float32)
    elif dtype is np.int32:
        pixels = rng.integers(-70000, 70000, shape, dtype=np.int32)
    elif dtype is np.bool_:
        pixels = rng.integers(0, 2, shape).astype(bool)
    else:
        pixels = rng.integers(0, np.iinfo(dtype).max, shape, dtype=dtype, endpoint=True)
    if mode == "P":
        image = Image.fromarray(pixels, mode="L").convert("P")
        if draw(st.booleans()) and fmt in ("PNG", "GIF"):
            image.info["transparency"] = 0
    elif mode == "CMYK":
        image = Image.frombytes("CMYK", (width, height), pixels.tobytes())
    elif mode == "I;16":
        image = Image.frombytes("I;16", (width, height), pixels.astype("<u2").tobytes())
    else:
        image = Image.fromarray(pixels)
        if image.mode != mode:
            image = image.convert(mode)
    return _encode(image, fmt), (width, height), mode, fmt


@FAST
@given(encoded_images())
def test_every_mode_and_depth_becomes_rgb_of_the_same_size(case):
    data, size, mode, fmt = case
    image, notes = load_image_with_notes(data)
    assert image.mode == "RGB"
    assert image.size == size
    assert np.asarray(image).dtype == np.uint8
    if mode != "RGB" and fmt != "JPEG":  # JPEG stores L/RGB/CMYK as such; others say what was converted
        assert notes, f"{mode} in {fmt} converted silently"


@FAST
@given(encoded_images(), st.data())
def test_truncated_or_corrupted_files_give_an_image_or_a_clear_error(case, data):
    encoded, _, _, _ = case
    cut = data.draw(st.integers(0, len(encoded) - 1))
    mutated = bytearray(encoded[:cut] if data.draw(st.booleans()) else encoded)
    for _ in range(data.draw(st.integers(0, 4))):
        if mutated:
            mutated[data.draw(st.integers(0, len(mutated) - 1))] = data.draw(st.integers(0, 255))
    try:
        image = load_image(bytes(mutated))
    except ImageLoadError as exc:
        assert str(exc) and "\n" not in str(exc)
    else:
        assert image.mode == "RGB" and min(image.size) >= 1


MAGIC = [b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"BM", b"II*\x00", b"MM\x00*", b"RIFF", b""]


@FAST
@given(st.sampled_from(MAGIC), st.binary(max_size=300))
def test_random_bytes_give_an_image_or_a_clear_error(magic, tail):
    try:
        image = load_image(magic + tail)
    except ImageLoadError as exc:
        assert str(exc)
    else:
        assert image.mode == "RGB"


def test_exif_orientation_is_applied():
    image = Image.new("RGB", (30, 10), (255, 0, 0))
    image.paste((0, 0, 255), (0, 0, 10, 10))  # blue square on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: display = rotate 90 degrees clockwise
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif, quality=95)
    loaded, notes = load_image_with_notes(buffer.getvalue())
    assert loaded.size == (10, 30)
    top = np.asarray(loaded)[2, 5]
    assert top[2] > 200 and top[0] < 60  # the left edge is now the top
    assert any("orientation" in note for note in notes)


def test_decompression_bombs_are_refused_before_decoding(monkeypatch):
    side = int(math.isqrt(MAX_PIXELS)) + 10
    header_only = _encode(Image.new("1", (side, side)), "PNG")  # small file, huge image
    with pytest.raises(ImageLoadError, match="megapixels|decompression bomb"):
        load_image(header_only)
    # Pillow's own guard is an error too, not a warning, even under a stricter limit
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(ImageLoadError, match="decompression bomb"):
        load_image(_encode(Image.new("RGB", (11, 11)), "PNG"))


def test_files_paths_and_folders_get_clear_errors(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("hello")
    good = tmp_path / "good.gif"
    frames = [Image.new("RGB", (8, 8), (100 * i, 50, 0)) for i in range(3)]
    frames[0].save(good, save_all=True, append_images=frames[1:])
    cases = {tmp_path / "missing.png": "does not exist", tmp_path: "folder", tmp_path / "empty.png": "empty",
             tmp_path / "text.png": "not an image", str(tmp_path / "nul\0.png"): "does not exist|not a valid file path"}
    for source, message in cases.items():
        with pytest.raises(ImageLoadError, match=message):
            load_image(source)
    image, notes = load_image_with_notes(good)
    assert image.mode == "RGB" and any("first frame" in note for note in notes)


# -- caw-core train flags ----------------------------------------------------------------------------------------

NUMBER_TEXT = st.one_of(
    st.integers(-10**6, 10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["0", "-0", "1e309", "-1e-309", "nan", "inf", "-inf", "1_000", "0x10", " 3 ", "", "1/255"]),
)
ANY_TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
FLAGS = ["--eps", "--lr", "--batch-size", "--attack-steps", "--attack-step-size", "--momentum", "--epochs",
         "--max-steps", "--grad-clip", "--save-every", "--keep-last", "--num-workers", "--warmup-steps", "--alpha",
         "--beta", "--weight-decay", "--clean-acc-every", "--seed", "--method", "--precision", "--attack-norm",
         "--optimizer", "--kl", "--ablation", "--reg-space", "--pmg-aft-variant", "--refine-weight"]


class _Accepted(Exception):
    def __init__(self, config):
        self.config = config


class _ValidatingTrainer:
    """Stands in for Trainer: validates like it does, then stops before loading models or data."""

    def __init__(self, config, resume=False):
        config.validate()
        config.resolve()
        raise _Accepted(config)


@FAST
@given(st.lists(st.tuples(st.sampled_from(FLAGS), st.one_of(NUMBER_TEXT, ANY_TEXT)), min_size=1, max_size=4))
def test_train_flags_give_a_valid_config_or_a_clean_exit_2(monkeypatch_session, flags):
    from caw_core import cli

    argv = ["train"]
    for flag, value in flags:
        argv += [f"{flag}={value}"]  # '=' so values starting with '-' stay values
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            status = cli.main(argv)
    except SystemExit as exit_:  # argparse: type or choice errors
        assert exit_.code == 2
        assert "error:" in stderr.getvalue() and "Traceback" not in stderr.getvalue()
        return
    except _Accepted as accepted:
        config = accepted.config
        assert config.batch_size >= 1 and config.eps >= 0 and config.attack_steps >= 1
        return
    err = stderr.getvalue()
    assert status == 2
    assert err.startswith("caw-core train: error: ") and err.count("\n") == 1, err


@pytest.fixture(scope="module")
def monkeypatch_session():
    """Patch Trainer once for the whole property test (hypothesis forbids function-scoped fixtures)."""
    import caw_core.train

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(caw_core.train, "Trainer", _ValidatingTrainer)
        yield patch


def test_non_finite_numbers_are_refused(monkeypatch):
    """inf/nan must not slip through validation (lr=inf diverges at step 1; eps=inf is no threat model)."""
    import caw_core.train
    from caw_core import cli

    monkeypatch.setattr(caw_core.train, "Trainer", _ValidatingTrainer)
    accepted = []
    for flag in ("--eps", "--lr", "--attack-step-size", "--grad-clip", "--alpha", "--beta", "--weight-decay"):
        for value in ("nan", "inf"):
            with contextlib.suppress(SystemExit), contextlib.redirect_stderr(io.StringIO()):
                try:
                    assert cli.main(["train", f"{flag}={value}"]) == 2
                except _Accepted:
                    accepted.append(f"{flag}={value}")
    assert not accepted, f"accepted: {accepted}"
