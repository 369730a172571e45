"""Train tab and window shell: quitting, run history and overlays, broken runs, banners, saved choices, start-up."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from gui_helpers import TINY, gui_settings, trained_run, wait_for, window  # noqa: F401  (fixtures)
from PySide6.QtCore import QSettings, QTimer

from caw_core.models import ModelSpec

pytestmark = pytest.mark.gui
REPO = Path(__file__).resolve().parents[1]


def _partial_run(runs_dir: Path, name: str = "partial", steps: int = 4, stop_after: int = 2) -> Path:
    """A tiny caw run stopped after ``stop_after`` of ``steps`` steps (a checkpoint at the stop)."""
    from caw_core.train import TrainConfig, Trainer

    config = TrainConfig(model=TINY.name, pretrained=None, data="toy-shape", batch_size=4, max_steps=steps,
                         num_workers=0, runs_dir=str(runs_dir), name=name, device="cpu", warmup_steps=0,
                         save_every=1000)
    trainer = Trainer(config)
    for record in trainer.run():
        if record.get("step") == stop_after:
            trainer.request_stop()
    return runs_dir / name


def _copy_run(source: Path, runs_dir: Path, name: str) -> Path:
    target = runs_dir / name
    shutil.copytree(source, target)
    return target


# -- quitting --------------------------------------------------------------------------------------------------
def test_quit_while_training_saves_a_checkpoint_and_closes_without_blocking_the_window(window):
    view = window.train_view
    view.batch.setValue(4)
    view.max_steps.setValue(10_000)
    view.start()
    wait_for(lambda: view.loss_plot.point_count("total") >= 1, what="a training step")
    task = view.task
    ticks, closed = [], []
    window.closed.connect(lambda: closed.append(True))
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(1))
    timer.start(5)
    window.close()  # asks (the fixture answers Yes), stops the run, closes once the checkpoint is written
    assert view.is_running() and not closed, "close() must not wait for the step in the GUI thread"
    wait_for(lambda: bool(closed), what="the window to close")
    timer.stop()
    assert ticks, "the GUI thread must keep running while the checkpoint is saved"
    assert not window.isVisible() and not task.is_running() and task.status == "stopped"
    latest = Path(view.run_dir) / "checkpoints" / "latest.json"
    assert latest.is_file() and 1 <= json.loads(latest.read_text())["step"] < 10_000


def test_quit_while_a_model_loads_does_not_abort(tmp_path):
    """The real entry point; the model load is slowed down and the window closed while it runs."""
    script = textwrap.dedent("""
        import sys, time
        import caw_gui.workers.jobs as jobs
        from PySide6.QtCore import QTimer
        from PySide6.QtWidgets import QApplication
        from caw_gui import app as entry

        real_get = jobs.ModelCache.get
        def slow_get(self, spec, device):
            time.sleep(12)  # longer than the old close handler waited (10 s)
            return real_get(self, spec, device)
        jobs.ModelCache.get = slow_get

        def close_when_shown():
            for widget in QApplication.topLevelWidgets():
                if type(widget).__name__ == "MainWindow" and widget.isVisible():
                    assert widget.model_task is not None and widget.model_task.is_running()
                    widget.close()
                    print("closed while loading", flush=True)
                    return
            QTimer.singleShot(20, close_when_shown)

        QTimer.singleShot(0, close_when_shown)
        status = entry.main(["caw-gui"])
        print("exited", status, flush=True)
    """)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "OMP_NUM_THREADS": "1", "HOME": str(tmp_path),
           "XDG_CONFIG_HOME": str(tmp_path / "config"), "XDG_DATA_HOME": str(tmp_path / "data"),
           "XDG_STATE_HOME": str(tmp_path / "state"), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert "closed while loading" in done.stdout, done.stderr[-2000:]
    assert done.returncode == 0 and "exited 0" in done.stdout, done.stderr[-2000:]
    assert "Destroyed while thread" not in done.stderr


# -- history, run list, overlays -------------------------------------------------------------------------------
def test_a_finished_runs_curves_load_from_its_history(window, trained_run):
    run = _copy_run(trained_run, Path(window.settings.runs_dir), "finished")
    view = window.train_view
    view.run_list.refresh()
    assert view.run_list.infos[str(run)].status == "finished"
    view.show_run(str(run))
    assert view.loss_plot.point_count("total") == 1 and "total" in view.loss_plot.metrics()
    assert view.progress.value() == 1 and "finished" in view.shown_label.text()


def test_resuming_keeps_the_curves_of_the_steps_before_the_checkpoint(window):
    run = _partial_run(Path(window.settings.runs_dir), steps=4, stop_after=2)
    view = window.train_view
    view.run_list.refresh()
    assert view.run_list.infos[str(run)].status == "partial"
    view.run_list.select(str(run))
    assert view.run_list.resume_button.isEnabled()
    view.run_list.resume_button.click()
    wait_for(lambda: not view.is_running(), what="the resumed run to finish")
    assert view.loss_plot.point_count("total") == 4  # 2 from metrics.jsonl + 2 new ones
    assert view.run_list.infos[str(run)].status == "finished"


def test_run_list_shows_broken_runs_as_broken_and_pickers_never_choose_them(window, trained_run):
    from caw_core.models.checkpoint import CheckpointError
    from caw_gui.widgets.model_picker import CheckpointCombo, spec_from_checkpoint

    runs_dir = Path(window.settings.runs_dir)
    good = _copy_run(trained_run, runs_dir, "good")
    broken = _copy_run(trained_run, runs_dir, "fakerun")
    (broken / "checkpoints" / "latest.json").write_text('{"step": 1}')  # the pointer lost its folder
    os.utime(good, (1_000, 1_000))  # the broken run is the newest
    view = window.train_view
    view.run_list.refresh()
    info = view.run_list.infos[str(broken)]
    assert info.status == "broken" and "damaged" in info.problem
    row = next(view.run_list.tree.topLevelItem(i) for i in range(view.run_list.tree.topLevelItemCount())
               if view.run_list.tree.topLevelItem(i).text(0) == "fakerun")
    assert row.text(5) == "broken" and "damaged" in row.toolTip(5)
    combo = CheckpointCombo(str(runs_dir))
    assert combo.path() == str(good)
    assert not combo.model().item(combo.findData(str(broken))).isEnabled()
    with pytest.raises(CheckpointError) as error:
        spec_from_checkpoint(str(broken))
    assert "fakerun cannot be used" in str(error.value) and "'folder'" not in str(error.value)


def test_ticked_runs_are_overlaid_in_their_own_colours(window, trained_run):
    runs_dir = Path(window.settings.runs_dir)
    first = _copy_run(trained_run, runs_dir, "first")
    second = _copy_run(trained_run, runs_dir, "second")
    view = window.train_view
    view.run_list.refresh()
    view.run_list.set_overlay(str(first), True)
    view.run_list.set_overlay(str(second), True)
    plot = view.loss_plot
    assert {"first", "second"} <= set(plot.runs())
    assert plot.point_count("total", "first") == plot.point_count("total", "second") == 1
    assert plot.series[("first", "total")].colour != plot.series[("second", "total")].colour
    view.run_list.set_overlay(str(first), False)
    assert "first" not in plot.runs() and "second" in plot.runs()


def test_runs_can_be_renamed_and_deleted_but_not_while_training(window, trained_run, monkeypatch):
    runs_dir = Path(window.settings.runs_dir)
    run = _copy_run(trained_run, runs_dir, "old-name")
    runs_list = window.train_view.run_list
    runs_list.refresh()
    renamed = runs_list.rename(str(run), "new-name")
    assert Path(renamed).is_dir() and not run.exists() and str(renamed) in runs_list.infos
    runs_list.set_active(renamed)
    with pytest.raises(ValueError, match="being trained"):
        runs_list.delete(renamed)
    runs_list.set_active("")
    opened = []
    monkeypatch.setattr("caw_gui.widgets.run_list.QDesktopServices.openUrl", lambda url: opened.append(url))
    runs_list.select(renamed)
    runs_list.folder_button.click()
    assert opened and opened[0].toLocalFile() == renamed
    runs_list.delete(renamed)
    assert not Path(renamed).exists() and renamed not in runs_list.infos


def test_plots_export_png_and_svg_and_report_values_under_the_mouse(window, trained_run, tmp_path):
    view = window.train_view
    view.show_run(str(trained_run))
    for name in ("losses.png", "losses.svg"):
        view.loss_plot.export(str(tmp_path / name))
        assert (tmp_path / name).stat().st_size > 0
    assert (tmp_path / "losses.svg").read_text().lstrip().startswith("<?xml")
    assert set(view.loss_plot.values_at(1)) >= {"total"}


def test_eta_excludes_loading_and_paused_time():
    from caw_gui.views.train_view import EtaClock

    now = [100.0]
    clock = EtaClock(now=lambda: now[0])
    now[0] = 160.0  # a minute of model and data loading
    clock.step(1)
    assert clock.eta(1, 11) is None
    now[0] += 10.0
    clock.pause(True)
    now[0] += 500.0  # paused
    clock.pause(False)
    now[0] += 10.0
    assert clock.eta(3, 11) == pytest.approx(10.0 * 8)  # 20 s of training for 2 steps, 8 left


# -- banners, saved choices, layout ----------------------------------------------------------------------------
def test_a_long_message_does_not_grow_the_window_or_push_buttons_off_screen(window):
    from caw_gui.widgets.banner import DETAILS_MAX_HEIGHT

    window.resize(1024, 700)
    view = window.train_view
    text = "Datasets missing. " + "\n".join(f"dataset {i} is missing under the data root" for i in range(200))
    view.banner.show_message(text, "warning")
    wait_for(lambda: view.banner.isVisible(), what="the banner")
    assert view.banner.sizeHint().height() < 100 and window.height() <= 700
    view.banner.details_button.click()
    assert view.banner.sizeHint().height() <= DETAILS_MAX_HEIGHT + 100 and window.height() <= 700
    assert view.banner.text() == text and view.banner.label.text() == "Datasets missing."
    assert not view.start_button.visibleRegion().isEmpty()


def test_train_tab_fits_1024_by_700(window):
    window.resize(1024, 700)
    window.tabs.setCurrentWidget(window.train_view)
    wait_for(lambda: window.train_view.isVisible(), what="the train tab")
    view = window.train_view
    assert window.width() <= 1024 and window.height() <= 700
    for widget in (view.start_button, view.stop_button, view.progress, view.loss_plot.plot.viewport(), view.acc_plot.plot.viewport(),
                   view.run_list.tree):
        assert not widget.visibleRegion().isEmpty(), widget


def test_model_and_device_are_saved_only_after_they_work(window, gui_settings, tmp_path):
    missing = ModelSpec(TINY.name, str(tmp_path / "missing.safetensors"))
    wait_for(lambda: window.model_task is None, what="the first model load")
    window.set_model(missing)
    wait_for(lambda: window.model_task is None, what="the failing load")
    assert gui_settings.model_spec == TINY and window.model_spec == TINY
    assert "Model → Choose model" in window.banner.text() and "--" not in window.banner.text()
    assert not window.device_actions["cuda"].isEnabled() or window.device_actions["cuda"].toolTip() == "Run models on cuda"
    if not window.device_actions["cuda"].isEnabled():  # a machine without a GPU
        window.set_device("cuda")
        assert gui_settings.device == "cpu" and "Model → Device" in window.banner.text()
        index = window.train_view.device.findText("cuda")
        assert not window.train_view.device.model().item(index).isEnabled()


def test_a_saved_model_that_no_longer_loads_is_forgotten(qtbot, gui_settings, tmp_path, monkeypatch):
    from caw_gui.main_window import MainWindow

    gui_settings.model_spec = ModelSpec(TINY.name, str(tmp_path / "deleted.safetensors"))
    win = MainWindow(gui_settings)
    qtbot.addWidget(win)
    wait_for(lambda: win.model_task is None and "toy" in win.model_label.text(), what="the fallback to toy")
    assert gui_settings.model_spec == ModelSpec("toy", None)
    assert "could not be loaded" in win.banner.text()
    win.close()


def test_the_default_train_config_is_the_demo_recipe(window):
    from caw_core.toy.recipe import toy_train_config

    view = window.train_view
    view.set_base_model(ModelSpec("toy", None))
    config = view.build_config()
    recipe = toy_train_config("caw")
    assert config.options() == recipe.options()
    ignore = {"runs_dir", "name", "data_root", "device", "method_options"}
    differences = {k: (getattr(config, k), getattr(recipe, k)) for k in vars(recipe)
                   if k not in ignore and getattr(config, k) != getattr(recipe, k)}
    assert differences == {}


def test_help_lists_the_shortcuts_and_about_names_the_folders(window):
    keys = dict((what, key) for key, what in window.shortcuts())
    assert keys["Train: start a run"] == "F5" and keys["Train: stop (saves a checkpoint)"] == "Shift+F5"
    assert "Quit" in keys
    about = window.about_text()
    assert window.settings.runs_dir in about and window.settings.results_dir in about and "http" in about


def test_every_technical_train_control_has_a_tooltip(window):
    view = window.train_view
    assert view.method_options.editors and all(editor.toolTip() for editor, _ in view.method_options.editors.values())
    for widget in (view.method, view.method_options, view.eps, view.attack_steps, view.lr, view.batch,
                   view.max_steps, view.precision, view.device, view.dataset, view.smoothing):
        assert widget.toolTip(), widget


# -- start-up --------------------------------------------------------------------------------------------------
def test_the_start_up_window_needs_no_torch():
    code = ("import sys; from PySide6.QtWidgets import QApplication; app = QApplication([]); "
            "import caw_gui.app as a; w = a.StartupWindow(3); w.show(); "
            "print('torch' in sys.modules, 'open_clip' in sys.modules)")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["False", "False"], done.stderr[-2000:]


def test_starts_with_an_unreadable_run_folder_a_damaged_setting_and_a_very_long_runs_path(qtbot, gui_settings,
                                                                                        tmp_path):
    from caw_gui.errors import setup_logging
    from caw_gui.main_window import MainWindow

    runs_dir = Path(gui_settings.runs_dir)
    (runs_dir / "locked").mkdir(parents=True)
    (runs_dir / "locked").chmod(0)
    gui_settings.store.setValue("model/spec", "[" * 100_000)
    assert gui_settings.model_spec == ModelSpec("toy", None)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    assert "cannot be used" in setup_logging(blocker / "logs")
    try:
        win = MainWindow(gui_settings)
        qtbot.addWidget(win)
        assert win.train_view.run_list.infos[str(runs_dir / "locked")].status == "broken"
        win.close()
    finally:
        (runs_dir / "locked").chmod(0o755)
    gui_settings.runs_dir = str(tmp_path / ("r" * 120) / ("u" * 120))
    win = MainWindow(gui_settings)
    qtbot.addWidget(win)
    assert "characters long" in win.banner.text()
    win.close()


def test_a_dark_system_scheme_reaches_the_plots_and_banners(window, monkeypatch):
    from PySide6.QtWidgets import QApplication

    from caw_gui.theme import apply_theme

    app = QApplication.instance()
    view = window.train_view
    monkeypatch.setenv("CAW_GUI_THEME", "dark")
    try:
        apply_theme(app)
        wait_for(lambda: view.loss_plot.plot.backgroundBrush().color().lightness() < 128, what="dark plots")
        view.banner.show_message("Training failed: disk full.", "error")
        assert view.banner.palette().color(view.banner.backgroundRole()).lightness() < 128
        assert "#3a1a18" in view.banner.styleSheet()
    finally:
        monkeypatch.setenv("CAW_GUI_THEME", "light")
        apply_theme(app)
    wait_for(lambda: view.loss_plot.plot.backgroundBrush().color().lightness() > 128, what="light plots again")


def test_a_model_check_superseded_by_a_newer_choice_is_ignored(window, gui_settings, tmp_path):
    wait_for(lambda: window.model_task is None, what="the first model load")
    window.set_model(ModelSpec(TINY.name, str(tmp_path / "missing.safetensors")))
    window.set_model(TINY)  # chosen before the first check reported
    wait_for(lambda: window.model_task is None, what="the newer check")
    assert "missing" not in window.banner.text() and gui_settings.model_spec == TINY
