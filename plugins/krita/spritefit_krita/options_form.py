"""The docker's fit options, built from the worker's option schema (spritefit_client.option_schema):
one control per option the schema shows, the basic ones in the docker's form, the advanced ones in
a box folded away. No choice, range or default is written here."""
from __future__ import annotations

from typing import Any

from PyQt5.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox, QLineEdit, QSpinBox,
                             QVBoxLayout, QWidget)

from .spritefit_client import automatic_value, control_default, has_automatic

LABELS = {"n": "Count", "iters": "Iterations", "size": "Working size", "color_mode": "Colour",
          "sprite_alpha": "Sprite alpha", "cluster": "Ray cluster", "lr_position": "Position step",
          "lr_log_size": "Size step", "lr_angle": "Angle step", "lr_color": "Colour step",
          "lr_opacity": "Opacity step"}


def label_of(option: dict) -> str:
    return LABELS.get(option["name"], option["name"].replace("_", " ").capitalize())


class OptionControls:
    """The controls of some options, by name, with their values read and set as the schema types them."""

    def __init__(self):
        self.options: dict[str, dict] = {}
        self.widgets: dict[str, QWidget] = {}

    def add_rows(self, form: QFormLayout, options: list[dict]) -> None:
        for option in options:
            widget = self._widget(option)
            widget.setToolTip(option["help"])
            self.options[option["name"]], self.widgets[option["name"]] = option, widget
            form.addRow(label_of(option), widget)
            self.set_value(option["name"], control_default(option))

    def advanced_box(self, options: list[dict], extra_rows=()) -> QGroupBox:
        """A box titled Advanced, folded until its check box is ticked, with these options and
        (label, widget) rows of the docker's own."""
        box = QGroupBox("Advanced")
        box.setCheckable(True)
        inner = QWidget()
        form = QFormLayout(inner)
        self.add_rows(form, options)
        for label, widget in extra_rows:
            form.addRow(label, widget)
        layout = QVBoxLayout(box)
        layout.addWidget(inner)
        box.toggled.connect(inner.setVisible)
        box.setChecked(False)
        inner.setVisible(False)
        return box

    def _widget(self, option: dict) -> QWidget:
        kind = option["type"]
        if kind == "bool":
            return QCheckBox()
        if option.get("choices"):
            combo = QComboBox()
            combo.addItems(list(option["choices"]))
            return combo
        if kind in ("int", "float"):
            spin: Any = QSpinBox() if kind == "int" else QDoubleSpinBox()
            low, high = option["range"]
            if kind == "float":
                spin.setDecimals(3)
                spin.setSingleStep(0.01)
            if has_automatic(option):
                low = automatic_value(option)
                spin.setSpecialValueText("preset's" if "presets" in option else "automatic")
            spin.setRange(low, high)
            return spin
        line = QLineEdit()
        line.setPlaceholderText(str(option["default"]) or "empty")
        return line

    def value(self, name: str):
        widget: Any = self.widgets[name]
        if isinstance(widget, QCheckBox):
            return widget.isChecked()
        if isinstance(widget, QComboBox):
            return widget.currentText()
        if isinstance(widget, (QSpinBox, QDoubleSpinBox)):
            return widget.value()
        return widget.text().strip() or self.options[name]["default"]

    def set_value(self, name: str, value) -> None:
        widget: Any = self.widgets[name]
        if isinstance(widget, QCheckBox):
            widget.setChecked(bool(value))
        elif isinstance(widget, QComboBox):
            widget.setCurrentText(str(value))
        elif isinstance(widget, (QSpinBox, QDoubleSpinBox)):
            widget.setValue(value)
        else:
            widget.setText("" if value == self.options[name]["default"] else str(value))

    def values(self) -> dict:
        return {name: self.value(name) for name in self.widgets}
