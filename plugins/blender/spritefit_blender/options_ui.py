"""The panel's fit options, built from the worker's option schema (spritefit_client.option_schema):
one property per option the schema shows, drawn with the basic ones in the panel and the
advanced ones folded under a disclosure triangle. No choice, range or default is written here."""
from __future__ import annotations

import bpy

from . import spritefit_client as client

LABELS = {"n": "Count", "iters": "Iterations", "size": "Working size", "color_mode": "Colour",
          "sprite_alpha": "Sprite alpha", "cluster": "Ray cluster"}


def shown() -> tuple[list[dict], list[dict]]:
    return client.shown_options(client.BASIC), client.shown_options(client.ADVANCED)


def option_properties() -> dict:
    """{option name: a bpy property}, for the settings' annotations."""
    basic, advanced = shown()
    return {option["name"]: _property(option) for option in basic + advanced}


def _property(option: dict):
    name = LABELS.get(option["name"], option["name"].replace("_", " ").capitalize())
    default, kind = client.control_default(option), option["type"]
    help = option["help"]
    if kind == "bool":
        return bpy.props.BoolProperty(name=name, description=help, default=default)
    if option.get("choices"):
        return bpy.props.EnumProperty(name=name, description=help, default=default,
                                      items=[(c, c.title(), "") for c in option["choices"]])
    if kind in ("int", "float"):
        low, high = option["range"]
        if client.has_automatic(option):
            low = client.automatic_value(option)
            help += f" ({low}: {'the preset' if 'presets' in option else 'automatic'})"
        if kind == "int":
            return bpy.props.IntProperty(name=name, description=help, default=default, min=low, max=high)
        return bpy.props.FloatProperty(name=name, description=help, default=default, min=low, max=high,
                                       precision=3)
    return bpy.props.StringProperty(name=name, description=help, default=str(default))


def draw(layout, settings) -> None:
    basic, advanced = shown()
    for option in basic:
        layout.prop(settings, option["name"])
    row = layout.row()
    row.prop(settings, "show_advanced", icon="TRIA_DOWN" if settings.show_advanced else "TRIA_RIGHT",
             emboss=False)
    if settings.show_advanced:
        box = layout.box()
        for option in advanced:
            box.prop(settings, option["name"])
        box.prop(settings, "worker_python")


def chosen(settings) -> dict:
    """The options to send: those the panel sets (untouched ones are left to the engine)."""
    basic, advanced = shown()
    values = {option["name"]: getattr(settings, option["name"]) for option in basic + advanced}
    return client.with_cluster(client.chosen_options(values), values.get("cluster"))
