"""The method-options form is generated from each method's Options dataclass and round-trips its values."""

from __future__ import annotations

import dataclasses

import pytest
from gui_helpers import gui_settings, window  # noqa: F401  (fixtures)
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox

from caw_core.methods import METHODS
from caw_core.methods.base import option_fields

pytestmark = pytest.mark.gui


@pytest.mark.parametrize("method", list(METHODS))
def test_form_shows_every_option_at_its_default_with_help_as_tooltip(qtbot, method):
    from caw_gui.widgets.options_form import OptionsForm

    form = OptionsForm()
    qtbot.addWidget(form)
    options_cls = METHODS[method].Options
    form.set_options_class(options_cls)
    assert form.values() == dataclasses.asdict(options_cls())
    for spec, _ in option_fields(options_cls):
        assert form.editors[spec.name][0].toolTip() == spec.metadata["help"]


def test_form_edits_reach_the_train_config_and_a_run_config_is_shown(qtbot):
    from caw_gui.widgets.options_form import OptionsForm

    form = OptionsForm()
    qtbot.addWidget(form)
    form.set_options_class(METHODS["caw"].Options)
    alpha, _ = form.editors["alpha"]
    kl, _ = form.editors["kl"]
    detach, _ = form.editors["detach_weight"]
    assert isinstance(alpha, QDoubleSpinBox) and isinstance(kl, QComboBox) and isinstance(detach, QCheckBox)
    assert alpha.minimum() == 0.0  # the field's lower bound
    assert [kl.itemText(i) for i in range(kl.count())] == ["adv_clean", "clean_adv"]
    alpha.setValue(2.5)
    kl.setCurrentText("clean_adv")
    detach.setChecked(True)
    values = form.values()
    assert METHODS["caw"].Options(**values) == METHODS["caw"].Options(alpha=2.5, kl="clean_adv", detach_weight=True)
    form.set_values({"alpha": 0.25, "ablation": "ce+reg"})
    assert form.values()["alpha"] == 0.25 and form.values()["ablation"] == "ce+reg"
    form.set_options_class(METHODS["tecoa"].Options)
    assert form.values() == {}


def test_train_tab_builds_the_chosen_methods_options_into_its_config(window):
    view = window.train_view
    view.method.setCurrentText("pmg-aft")
    assert set(view.method_options.editors) == {"kl_original_weight", "kl_clean_weight", "variant"}
    view.method_options.editors["variant"][0].setCurrentText("caw-v1")
    config = view.build_config()
    assert config.method == "pmg-aft" and config.method_options["variant"] == "caw-v1"
    view.method.setCurrentText("caw")
    assert view.build_config().method_options == dataclasses.asdict(METHODS["caw"].Options())
