"""A form generated from a method's ``Options`` dataclass: one field per option, help text as tooltips.

Floats get a spin box (lower bound from the field's ``min``), ints a spin box, bools a check box,
fields with ``choices`` a combo box, other strings a line edit. The form knows nothing about any
particular method, so a new method or option shows up in the Train tab with no GUI edit.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QLabel, QLineEdit, QSpinBox, QWidget

from caw_core.methods.base import NoOptions, option_fields

FLOAT_MAX = 1e6


def _editor(kind: type, default: Any, metadata) -> QWidget:
    choices = metadata.get("choices")
    low = metadata.get("min")
    if choices is not None:
        editor = QComboBox()
        editor.addItems([str(c) for c in choices])
        editor.setCurrentText(str(default))
    elif kind is bool:
        editor = QCheckBox()
        editor.setChecked(default)
    elif kind is float:
        editor = QDoubleSpinBox()
        editor.setDecimals(4)
        editor.setSingleStep(0.01 if abs(default) < 1 else 0.1)
        editor.setRange(-FLOAT_MAX if low is None else low, FLOAT_MAX)
        editor.setValue(default)
    elif kind is int:
        editor = QSpinBox()
        editor.setRange(-2**31 + 1 if low is None else int(low), 2**31 - 1)
        editor.setValue(default)
    else:
        editor = QLineEdit(str(default))
    return editor


def _value(editor: QWidget, kind: type) -> Any:
    if isinstance(editor, QComboBox):
        return editor.currentText()
    if isinstance(editor, QCheckBox):
        return editor.isChecked()
    if isinstance(editor, (QDoubleSpinBox, QSpinBox)):
        return kind(editor.value())
    return editor.text()


def _show(editor: QWidget, value: Any) -> None:
    if isinstance(editor, QComboBox):
        editor.setCurrentText(str(value))
    elif isinstance(editor, QCheckBox):
        editor.setChecked(bool(value))
    elif isinstance(editor, (QDoubleSpinBox, QSpinBox)):
        editor.setValue(value)
    else:
        editor.setText(str(value))


class OptionsForm(QWidget):
    """Edits one ``Options`` dataclass; :meth:`values` is the dict ``TrainConfig.method_options`` takes."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.layout_ = QFormLayout(self)
        self.layout_.setContentsMargins(0, 0, 0, 0)
        self.editors: dict[str, tuple[QWidget, type]] = {}
        self.set_options_class(NoOptions)

    def set_options_class(self, options_cls: type) -> None:
        """Rebuild the fields for ``options_cls``, each at its default."""
        while self.layout_.rowCount():
            self.layout_.removeRow(0)
        self.editors = {}
        defaults = options_cls()
        for spec, kind in option_fields(options_cls):
            editor = _editor(kind, getattr(defaults, spec.name), spec.metadata)
            editor.setToolTip(spec.metadata.get("help", ""))
            label = QLabel(spec.name.replace("_", " "))
            label.setToolTip(editor.toolTip())
            self.layout_.addRow(label, editor)
            self.editors[spec.name] = (editor, kind)
        if not self.editors:
            self.layout_.addRow(QLabel("this method has no options"))

    def values(self) -> dict:
        return {name: _value(editor, kind) for name, (editor, kind) in self.editors.items()}

    def set_values(self, values: dict) -> None:
        """Show ``values`` (e.g. a run's ``method_options``); names the form does not have are ignored."""
        for name, value in values.items():
            if name in self.editors:
                _show(self.editors[name][0], value)
