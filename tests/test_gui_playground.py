"""Attack playground: dropped images give vanilla and fine-tuned predictions and a verdict; cancel reaches
inside the attack; bad inputs give messages; drops on the class list never type a URL; 1024x700 fits."""

from __future__ import annotations

import numpy as np
import pytest
from gui_helpers import TINY, gui_settings, trained_run, wait_for, window  # noqa: F401  (fixtures)
from gui_images import bad_files, noise_png, odd_files
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QImage
from PySide6.QtWidgets import QApplication

from caw_core.data import toyworld as tw
from caw_core.models import ModelSpec
from caw_core.train import Trainer, resume_config

pytestmark = pytest.mark.gui


def _drop(target, mime: QMimeData) -> None:
    event = QDropEvent(QPointF(20, 20), Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
    target.dropEvent(event)


def _file_mime(*paths) -> QMimeData:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    return mime


def _finished(view) -> bool:
    return not view.is_busy()


def _scene_png(path) -> str:
    Image.fromarray(tw.render_uint8(tw.sample_scenes(2, [0]))[0]).save(path)
    return str(path)


def test_dropped_image_gets_predictions_from_both_models(window, trained_run, tmp_path):
    view = window.playground
    view.finetuned.refresh(select=str(trained_run))
    window.tabs.setCurrentIndex(0)
    _drop(window, _file_mime(_scene_png(tmp_path / "scene.png")))
    assert window.tabs.currentWidget() is view
    wait_for(lambda: _finished(view), what="the attack")
    assert view.image_name == "scene.png" and view.banner.text() == ""
    for role in ("vanilla", "finetuned"):
        for kind in ("clean", "adversarial"):
            entries = view.charts[(role, kind)].entries
            assert len(entries) == 5, (role, kind)  # a real (non-toy) CLIP starts on the ImageNet classes
            assert all(0 <= p <= 1 for _, p in entries) and entries[0][1] >= entries[-1][1]
    assert set(view.adversarials) == {"vanilla", "finetuned"}
    assert "crafted on" in view.adv_panel.title.text()
    delta = view.adversarials["finetuned"]["delta"]
    assert 0 < np.abs(delta).max() <= 4 / 255 + 1e-6  # inside the default eps ball of 4/255
    assert view.delta_panel.canvas.overlay.startswith("×")
    # what the model saw: the 32 px input, said in words
    caption = view.clean_panel.caption.text()
    assert "model input 32×32" in caption and "resized from 64×64" in caption
    assert set(view.verdicts()) == {"vanilla", "finetuned"}
    verdict_text = view.verdict_label.text()
    assert verdict_text.count("FOOLED") + verdict_text.count("ROBUST") == 2 and "Fine-tuned:" in verdict_text

    written = view.save_adversarial(str(tmp_path / "out.png"))
    saved = np.asarray(Image.open(written[0]))
    assert np.array_equal(saved, view.adversarials[view.shown_role()]["image"])
    assert written[1].suffix == ".npy" and written[2].is_file()
    for suffix in (".png", ".svg"):
        figure = view.export_charts(str(tmp_path / f"charts{suffix}"))
        assert figure is not None and figure.stat().st_size > 0
    assert figure.read_text().lstrip().startswith("<?xml")


def test_transfer_mode_crafts_once_and_tests_both(window, trained_run):
    view = window.playground
    view.finetuned.refresh(select=str(trained_run))
    view.source.setCurrentIndex(1)  # craft on vanilla, transfer to fine-tuned
    view.attack.setCurrentText("pgd")
    view.norm.setCurrentText("ℓ2")
    view.steps.setValue(2)
    view.gallery._clicked(view.gallery.item(3))
    wait_for(lambda: _finished(view), what="the transfer attack")
    assert set(view.adversarials) == {"vanilla"}
    assert len(view.charts[("finetuned", "adversarial")].entries) == 5
    assert "(crafted on vanilla)" in view.charts[("finetuned", "adversarial")].plotItem.titleLabel.text
    assert set(view.verdicts()) == {"vanilla", "finetuned"} and "image crafted on vanilla" in view.verdict_label.text()


def test_cancel_reaches_inside_a_long_autoattack(window):
    """Cancel during AutoAttack with 1000 iterations: the job ends after a handful of forward passes."""
    view = window.playground
    view.finetuned.setCurrentIndex(0)
    model = window.cache.get(TINY, "cpu")
    calls = []
    model.register_forward_hook(lambda *args: calls.append(1))
    view.attack.setCurrentText("aa")
    view.steps.setValue(1000)
    view.eps.setValue(16)
    view.gallery._clicked(view.gallery.item(0))
    wait_for(lambda: "forward pass" in view.attack_progress.format(), what="the attack's progress")
    view.cancel()
    at_cancel = len(calls)
    wait_for(lambda: _finished(view), what="the cancelled attack")
    assert view.status.text() == "Cancelled." and not view.adversarials
    assert len(calls) - at_cancel <= 2  # at most the forward already running (+ its progress lag)
    assert len(calls) < 200  # 1000 APGD iterations were asked for


def test_a_run_that_continued_is_attacked_with_its_new_weights(window, tiny_train_config):
    """Stale weights: attack, continue the run, attack again: the fine-tuned predictions follow the new step."""
    config = tiny_train_config(model=TINY.name, max_steps=1, save_every=1)
    list(Trainer(config).run())
    run_dir = f"{config.runs_dir}/{config.name}"
    view = window.playground
    view.finetuned.refresh(select=run_dir)
    view.attack.setCurrentText("pgd")
    view.steps.setValue(1)
    view.gallery._clicked(view.gallery.item(0))
    wait_for(lambda: _finished(view), what="the first attack")
    before = view.charts[("finetuned", "clean")].entries
    list(Trainer(resume_config(run_dir, max_steps=6, lr=0.5), resume=True).run())
    view.run_attack()
    wait_for(lambda: _finished(view), what="the second attack")
    assert view.charts[("finetuned", "clean")].entries != before


def test_zero_budget_says_the_attack_found_nothing(window):
    view = window.playground
    view.finetuned.setCurrentIndex(0)
    view.attack.setCurrentText("aa")
    view.steps.setValue(2)
    view.eps.setValue(0)
    view.gallery._clicked(view.gallery.item(0))
    wait_for(lambda: _finished(view), what="the attack")
    assert view.adv_panel.canvas.overlay == "nothing found" and "δ = 0" in view.verdict_label.text()
    assert "ROBUST" in view.verdict_label.text()


def test_toy_model_shows_toy_scenes_with_their_true_labels(window):
    view = window.playground
    assert view.gallery.kind == "photo" and view.gallery.count() == 4  # a real (non-toy) CLIP: photos
    view.set_vanilla(ModelSpec("toy", None))
    assert view.gallery.kind == "toy" and view.gallery.count() == 12
    assert view.preset.currentText() == "Toy shape"
    view.finetuned.setCurrentIndex(0)
    view.set_vanilla(TINY)  # back before anything loads the toy weights in the test
    view.set_vanilla(ModelSpec("toy", None))
    view.gallery.picked.disconnect()
    picked = []
    view.gallery.picked.connect(lambda *args: picked.append(args))
    view.gallery._clicked(view.gallery.item(0))
    image, caption, labels = picked[0]
    scene = tw.sample_scenes(2, [0])
    assert labels["shape"] == tw.SHAPES[scene.shape[0]] and tw.SHAPES[scene.shape[0]] in caption
    view.scene_labels = labels
    view._fill_true_classes()
    assert view.true_class.currentText() == labels["shape"]
    view.preset.setCurrentText("Toy colour")
    view._apply_preset("Toy colour")
    assert view.true_class.currentText() == labels["colour"]


def test_a_file_dropped_on_the_class_list_opens_it_and_types_nothing(window, tmp_path):
    view = window.playground
    view.finetuned.setCurrentIndex(0)
    view.steps.setValue(1)
    before = view.classes.toPlainText()
    _drop(view.classes, _file_mime(_scene_png(tmp_path / "dropped.png"), noise_png(tmp_path / "second.png")))
    assert view.classes.toPlainText() == before and "file://" not in view.classes.toPlainText()
    assert "2 files dropped: only the first, dropped.png, is used" in view.banner.text()
    wait_for(lambda: _finished(view), what="the attack")
    assert view.image_name == "dropped.png"


def test_bad_files_show_errors_and_the_app_stays_responsive(window, tmp_path):
    view = window.playground
    view.finetuned.setCurrentIndex(0)
    for case, (path, phrase) in bad_files(tmp_path).items():
        view.open_path(str(path))
        wait_for(lambda: _finished(view), what=f"decoding {case}")
        assert view.banner.level == "error" and phrase in view.banner.text(), (case, view.banner.text())
        assert view.image is None
    view.finetuned.refresh(select=str(tmp_path))  # a folder that is no run: unreadable checkpoint
    good = noise_png(tmp_path / "good.png")
    view.open_path(str(good))
    assert "no caw checkpoint" in view.banner.text() and not view.is_busy()
    view.finetuned.setCurrentIndex(0)  # (none): vanilla only
    view.steps.setValue(1)
    view.open_path(str(good))
    wait_for(lambda: _finished(view), what="the vanilla-only attack")
    assert len(view.charts[("vanilla", "clean")].entries) == 5 and not view.charts[("finetuned", "clean")].entries
    assert view.status.text().startswith("Done")


def test_odd_images_and_pasted_data_load_with_a_note(window, tmp_path):
    view = window.playground
    view.finetuned.setCurrentIndex(0)
    view.steps.setValue(1)
    for case, (path, phrase) in odd_files(tmp_path).items():
        assert view.open_mime(_file_mime(path)), case
        wait_for(lambda: _finished(view), what=f"the attack on {case}")
        assert view.banner.level == "info" and phrase in view.banner.text(), (case, view.banner.text())
    pasted = QMimeData()
    pasted.setImageData(QImage(str(noise_png(tmp_path / "clip.png"))))
    assert view.open_mime(pasted)
    wait_for(lambda: _finished(view), what="the pasted image")
    assert view.image_name == "pasted image"
    assert view.open_mime(QMimeData()) is False and view.banner.level == "warning"


def test_the_playground_fits_1024_by_700(window):
    window.resize(1024, 700)
    window.tabs.setCurrentWidget(window.playground)
    view = window.playground
    QApplication.processEvents()
    frame = window.rect()
    for widget in (view.run_button, view.cancel_button, view.attack_progress, *view.charts.values()):
        top_left = widget.mapTo(window, widget.rect().topLeft())
        bottom_right = widget.mapTo(window, widget.rect().bottomRight())
        assert frame.contains(top_left) and frame.contains(bottom_right), widget
        shown = widget.viewport() if hasattr(widget, "viewport") else widget  # a chart draws on its viewport
        assert not shown.visibleRegion().isEmpty(), widget
    for chart in view.charts.values():
        assert chart.height() >= chart.minimumHeight()


def test_chart_hover_names_the_bar(window):
    chart = window.playground.charts[("vanilla", "clean")]
    chart.set_topk([("cat", 0.7), ("dog", 0.2), ("fox", 0.1)])
    assert chart.entry_at(2.1) == ("cat", 0.7) and chart.entry_at(0.0) == ("fox", 0.1) and chart.entry_at(1.5) is None
    view_box = chart.plotItem.vb
    window.resize(1024, 700)
    QApplication.processEvents()
    scene_pos = view_box.mapViewToScene(QPointF(0.1, 1.0))
    assert chart.hover_text(scene_pos) == "dog: 20.00%"


def test_images_are_decoded_in_the_worker_not_the_gui_thread(window, tmp_path, monkeypatch):
    import threading

    import caw_gui.workers.jobs as jobs

    threads = []
    real = jobs.load_image

    def recording(source):
        threads.append(threading.current_thread())
        return real(source)

    monkeypatch.setattr(jobs, "load_image", recording)
    view = window.playground
    view.finetuned.setCurrentIndex(0)
    view.steps.setValue(1)
    view.open_path(_scene_png(tmp_path / "big.png"))
    assert threads == []  # nothing decoded yet: the call returned at once
    wait_for(lambda: _finished(view), what="the attack")
    assert len(threads) == 1 and threads[0] is not threading.main_thread() and view.image_name == "big.png"


def test_ctrl_enter_attacks_and_escape_cancels(window, qtbot):
    view = window.playground
    view.finetuned.setCurrentIndex(0)
    window.tabs.setCurrentWidget(view)
    view.set_image(Image.fromarray(np.zeros((32, 32, 3), np.uint8)), "black")
    view.cancel()
    wait_for(lambda: _finished(view), what="the cancelled attack")
    window.activateWindow()
    view.steps.setFocus()
    qtbot.keyClick(view.steps, Qt.Key_Return, Qt.ControlModifier)
    assert view.is_busy()
    qtbot.keyClick(view.steps, Qt.Key_Escape)
    wait_for(lambda: _finished(view), what="the cancelled attack")
    assert view.status.text() == "Cancelled."
