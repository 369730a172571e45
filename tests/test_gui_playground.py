"""Attack playground: dropped images give vanilla and fine-tuned predictions; bad inputs give messages."""

from __future__ import annotations

import numpy as np
import pytest
from gui_helpers import gui_settings, trained_run, wait_for, window  # noqa: F401  (fixtures)
from gui_images import bad_files, noise_png, odd_files
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QImage

from caw_core.data import toyworld as tw

pytestmark = pytest.mark.gui


def _drop(window, mime: QMimeData) -> None:
    event = QDropEvent(QPointF(50, 50), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    window.dropEvent(event)


def _finished(view) -> bool:
    return not view.is_busy()


def test_dropped_image_gets_predictions_from_both_models(window, trained_run, tmp_path):
    view = window.playground
    view.finetuned.refresh(select=str(trained_run))
    scene = tmp_path / "scene.png"
    Image.fromarray(tw.render_uint8(tw.sample_scenes(2, [0]))[0]).save(scene)
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(scene))])
    window.tabs.setCurrentIndex(0)
    _drop(window, mime)
    assert window.tabs.currentWidget() is view and view.image_name == "scene.png"
    wait_for(lambda: _finished(view), what="the attack")
    assert view.banner.text() == ""
    for role in ("vanilla", "finetuned"):
        for kind in ("clean", "adversarial"):
            entries = view.charts[(role, kind)].entries
            assert len(entries) == 5, (role, kind)
            assert all(0 <= p <= 1 for _, p in entries) and entries[0][1] >= entries[-1][1]
    assert set(view.adversarials) == {"vanilla", "finetuned"}
    assert "crafted on" in view.adv_panel.title.text()
    delta = view.adversarials["finetuned"]["delta"]
    assert 0 < np.abs(delta).max() <= 4 / 255 + 1e-6  # inside the default eps ball of 4/255
    assert view.delta_panel.canvas.overlay.startswith("×")

    written = view.save_adversarial(str(tmp_path / "out.png"))
    saved = np.asarray(Image.open(written[0]))
    assert np.array_equal(saved, view.adversarials[view.shown_role()]["image"])
    assert written[1].suffix == ".npy" and written[2].is_file()


def test_transfer_mode_crafts_once_and_tests_both(window, trained_run):
    view = window.playground
    view.finetuned.refresh(select=str(trained_run))
    view.source.setCurrentIndex(1)  # craft on vanilla, transfer to fine-tuned
    view.attack.setCurrentText("PGD ℓ2")
    view.steps.setValue(2)
    view.gallery._clicked(view.gallery.item(3))
    wait_for(lambda: _finished(view), what="the transfer attack")
    assert set(view.adversarials) == {"vanilla"}
    assert len(view.charts[("finetuned", "adversarial")].entries) == 5
    assert "crafted on vanilla" in view.charts[("finetuned", "adversarial")].plotItem.titleLabel.text


def test_bad_files_show_errors_and_the_app_stays_responsive(window, tmp_path):
    view = window.playground
    for case, (path, phrase) in bad_files(tmp_path).items():
        assert view.open_path(str(path)) is False, case
        assert view.banner.level == "error" and phrase in view.banner.text(), (case, view.banner.text())
        assert view.image is None and not view.is_busy()
    view.finetuned.refresh(select=str(tmp_path))  # a folder that is no run: unreadable checkpoint
    good = noise_png(tmp_path / "good.png")
    assert view.open_path(str(good))
    assert "no caw checkpoint" in view.banner.text() and not view.is_busy()
    view.finetuned.setCurrentIndex(0)  # (none): vanilla only
    view.run_attack()
    wait_for(lambda: _finished(view), what="the vanilla-only attack")
    assert len(view.charts[("vanilla", "clean")].entries) == 5 and not view.charts[("finetuned", "clean")].entries
    assert "only the vanilla model" in view.status.text() or view.status.text().startswith("Done")


def test_odd_images_and_pasted_data_load_with_a_note(window, tmp_path):
    view = window.playground
    view.finetuned.setCurrentIndex(0)
    for case, (path, phrase) in odd_files(tmp_path).items():
        mime = QMimeData()
        mime.setUrls([QUrl.fromLocalFile(str(path))])
        assert view.open_mime(mime), case
        assert view.banner.level == "info" and phrase in view.banner.text(), (case, view.banner.text())
        view.cancel()
        wait_for(lambda: _finished(view), what="the cancelled attack")
    pasted = QMimeData()
    pasted.setImageData(QImage(str(noise_png(tmp_path / "clip.png"))))
    assert view.open_mime(pasted) and view.image_name == "pasted image"
    view.cancel()
    wait_for(lambda: _finished(view), what="the cancelled attack")
    assert view.open_mime(QMimeData()) is False and view.banner.level == "warning"
