#!/usr/bin/env python3
"""SpriteFit for GIMP 3: Filters > Artistic > SpriteFit > Fit… and > Set up engine…

Set up engine installs (upgrades, repairs, uninstalls) SpriteFit's managed engine, with GIMP's
progress bar; Fit uses it unless worker.json's "python" or $SPRITEFIT_PYTHON names another.

Fit reproduces the target layer with copies of the selected layers (or a built-in pack, or a folder
of images), fitted by the SpriteFit worker in its own process. The image is read before the
fit and changed once, at the end, inside one undo group: a layer group with a background layer
and one layer per placed sprite. Cancelling in GIMP's progress bar kills this plug-in; the
worker sees its stdin close and exits, and the image is untouched.
"""
import json
import os
import sys
import time
from typing import Callable

import gi

gi.require_version("Gimp", "3.0")
gi.require_version("Gegl", "0.4")
from gi.repository import Gegl, Gimp, GLib, GObject  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import spritefit_client as client  # noqa: E402  (vendored beside this file)
import spritefit_engine as engine_setup  # noqa: E402  (vendored beside this file)
from spritefit_live import LiveClient  # noqa: E402  (vendored beside this file)

PROCEDURE = "python-fu-spritefit"
ENGINE_PROCEDURE = "python-fu-spritefit-engine"
MENU = "<Image>/Filters/Artistic/SpriteFit"
ENGINE_ACTIONS = ("install", "uninstall", "status")   # install also upgrades and repairs
PIXEL_FORMAT = "RGBA8"
BABL_FORMAT = "R'G'B'A u8"     # GIMP's name for the same bytes
SCENE_PARASITE = "spritefit-scene"
# Where Apply put each instance's layer, {"<layer tattoo>": [instance, x, y]}: a refit reads how the
# user moved them. Tattoos, not names: GIMP renames a layer whose name is taken ("circle #3 #1").
PLACES_PARASITE = "spritefit-places"
RESULT_GROUP_PREFIX = "SpriteFit ("
PREVIEW_SIZE = 256          # the live preview's working size (at most): a preview, fast
PREVIEW_TICK_MS = 100
WORKER_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "worker.json")


class PluginError(Exception):
    """Shown to the user as the procedure's error message; the image is unchanged."""


def worker_setting(key: str) -> str | None:
    """A setting of worker.json beside the plug-in: "python" (the worker's Python) or
    "ray_address" (a Ray cluster to fit on)."""
    try:
        with open(WORKER_CONFIG, encoding="utf-8") as f:
            value = json.load(f).get(key)
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def worker_python() -> str:
    configured = worker_setting("python")
    try:
        return engine_setup.engine_python(configured)
    except engine_setup.EngineNotReady as exc:
        raise PluginError(exc.status.then("use Filters > Artistic > SpriteFit > Set up engine….")) from None
    except client.WorkerError as exc:
        raise PluginError(f"{exc} (GIMP reads it from {WORKER_CONFIG})") from None


# --- reading the image -------------------------------------------------------------------------

def canvas_pixels(layer, width: int, height: int) -> bytes:
    """The layer's pixels placed on the canvas (transparent outside the layer)."""
    _, x, y = layer.get_offsets()
    rect = Gegl.Rectangle.new(-x, -y, width, height)
    return bytes(layer.get_buffer().get(rect, 1.0, BABL_FORMAT, Gegl.AbyssPolicy.NONE))


def check_image(image) -> None:
    if image.get_base_type() != Gimp.ImageBaseType.RGB:
        raise PluginError("SpriteFit works on RGB images: convert this one with Image > Mode > RGB.")


def read_target(image, layer, folder: str) -> dict:
    width, height = image.get_width(), image.get_height()
    if layer is None:
        raise PluginError("Choose the target layer (the picture to reproduce).")
    data = canvas_pixels(layer, width, height)
    if not client.has_pixels(data):
        raise PluginError(f"The target layer '{layer.get_name()}' is fully transparent: nothing to reproduce.")
    return client.write_pixels(folder, "target.raw", data, width, height, PIXEL_FORMAT)


def sprite_layers(drawables, target) -> list:
    """The selected layers, less the target; groups, masks and channels are refused by name."""
    layers = [d for d in drawables if target is None or d.get_id() != target.get_id()]
    if not layers:
        raise PluginError("Select the layers to use as sprites in the Layers dialog "
                          "(other than the target), or choose a built-in pack or a folder.")
    for layer in layers:
        if not isinstance(layer, Gimp.Layer) or isinstance(layer, Gimp.LayerMask):
            raise PluginError(f"'{layer.get_name()}' is not a layer; sprites must be layers with pixels.")
        if layer.is_group():
            raise PluginError(f"'{layer.get_name()}' is a layer group; select the layers inside it instead.")
    return layers


def read_sprites(drawables, target, source: str, folder: str, alpha: str = "auto") -> dict:
    try:
        if source.startswith("pack:"):
            return client.file_sprites("pack", source.split(":", 1)[1], alpha)
        if source.startswith("folder:"):
            return client.file_sprites("folder", source.split(":", 1)[1], alpha)
    except ValueError as exc:
        raise PluginError(str(exc)) from None
    specs = []
    for i, layer in enumerate(sprite_layers(drawables, target)):
        width, height = layer.get_width(), layer.get_height()
        data = bytes(layer.get_buffer().get(Gegl.Rectangle.new(0, 0, width, height), 1.0, BABL_FORMAT,
                                            Gegl.AbyssPolicy.NONE))
        if not client.has_pixels(data):
            raise PluginError(f"The sprite layer '{layer.get_name()}' is empty: paint something on it first.")
        specs.append(dict(client.write_pixels(folder, f"sprite-{i}.raw", data, width, height, PIXEL_FORMAT),
                          name=layer.get_name()))
    return {"layers": specs}


def read_masks(image, folder: str) -> dict:
    """The layers named mask, keep-in or keep-out (any case), as run request mask fields."""
    width, height = image.get_width(), image.get_height()
    layers = [(layer.get_name(), lambda layer=layer: canvas_pixels(layer, width, height)) for layer in image.get_layers()]
    try:
        masks = client.mask_layers(layers)
    except client.LayerError as exc:
        raise PluginError(str(exc)) from None
    return {field: client.write_pixels(folder, f"{field}.raw", data, width, height, PIXEL_FORMAT)
            for field, data in masks.items()}


def refit_inputs(image, folder: str, options: dict) -> dict:
    """Start from the last result as the user left it: every sprite layer's move is applied to
    its instance, and the layers locked (position or pixels) stay exactly as they are."""
    scene_parasite, places_parasite = image.get_parasite(SCENE_PARASITE), image.get_parasite(PLACES_PARASITE)
    groups = [layer for layer in image.get_layers() if layer.is_group()
              and layer.get_name().startswith(RESULT_GROUP_PREFIX)]
    if scene_parasite is None or places_parasite is None or not groups:
        raise PluginError("Refit needs an earlier SpriteFit result in this image: run SpriteFit once first.")
    places = json.loads(bytes(places_parasite.get_data()))
    moves = []
    for layer in groups[0].get_children():        # the top-most result
        index, x0, y0 = places.get(str(layer.get_tattoo()), (None, 0, 0))
        _, x, y = layer.get_offsets()
        moves.append((index, x - x0, y - y0, layer.get_lock_position() or layer.get_lock_content()))
    return client.refit_inputs(folder, json.loads(bytes(scene_parasite.get_data())), moves, image.get_width(), options)


# --- running and writing back ---------------------------------------------------------------------

def fit(image, drawables, config) -> dict:
    """Run the worker to the end with GIMP's progress bar; returns the result manifest."""
    check_image(image)
    python = worker_python()
    folder = client.new_job_folder("gimp-")
    try:
        target = read_target(image, config.get_property("target"), folder)
        refit = config.get_property("refit-locked")
        values = option_arguments(config)
        sprites = {} if refit else read_sprites(drawables, config.get_property("target"),
                                                config.get_property("sprites"), folder, values["sprite_alpha"])
        inputs = read_masks(image, folder)
        options = client.with_cluster(client.masked_options(client.chosen_options(values), inputs),
                                      values.get("cluster") or worker_setting("ray_address"))
        if refit:
            inputs.update(refit_inputs(image, folder, options))
        Gimp.progress_init("SpriteFit: starting the worker")
        with client.WorkerProcess(python) as worker:
            Gimp.progress_set_text(f"SpriteFit: fitting on {worker.hello.get('device', 'cpu')}")
            return worker.run("gimp", folder, target, sprites, options, PIXEL_FORMAT, on_progress=_progress,
                              inputs=inputs)
    except client.WorkerError as exc:
        client.remove_job_folder(folder)
        raise PluginError(str(exc)) from None
    except BaseException:
        client.remove_job_folder(folder)
        raise


# --- the fit dialog's live preview ----------------------------------------------------------------

class DialogPreview:
    """The fit dialog's live preview. GIMP 3 runs a plug-in as a one-shot procedure: it cannot
    follow the canvas while you paint, and its result is only added when it returns. What it can
    do is follow the dialog: with Live preview on, a live session (spritefit_live) fits the target
    at PREVIEW_SIZE and refits from the current arrangement whenever an option or the target layer
    changes in the dialog; OK then runs the full fit. The preview ignores mask layers.

    show(png or None, status line) puts a frame in the dialog; tick() runs every PREVIEW_TICK_MS."""

    def __init__(self, image, drawables, config, show: Callable[[str | None, str], None] | None = None):
        self.image, self.drawables, self.config = image, drawables, config
        self.show = show or (lambda path, message: None)
        self.worker: client.WorkerProcess | None = None
        self.live: LiveClient | None = None
        self.values: dict = {}                  # the dialog's last valid option values
        self.sprites = ""                       # the sprites argument the session started with
        self.finished_folders: list[str] = []   # of sessions ended by a restart
        self.closed = False

    def start(self) -> None:
        try:
            check_image(self.image)
            if self.worker is None:
                self.worker = client.WorkerProcess(worker_python())
            self.sprites = self.config.get_property("sprites")
            self.live = LiveClient("gimp", signature=self._target_id, write_target=self._write_target,
                                   sprites=self._read_sprites, options=self._options, apply=lambda manifest: "",
                                   pixel_format=PIXEL_FORMAT, not_ready=(PluginError,))
            self.worker.send(self.live.start)
        except (PluginError, client.WorkerError) as exc:
            self.live = None
            self.show(None, str(exc))
            return
        self.show(None, self.live.message)

    def _target(self):
        return self.config.get_property("target")

    def _target_id(self) -> bytes:
        target = self._target()
        return b"" if target is None else str(target.get_id()).encode()

    def _write_target(self, folder: str) -> dict:
        return read_target(self.image, self._target(), folder)

    def _read_sprites(self, folder: str) -> dict:
        alpha = self._options().get("sprite_alpha", "auto")
        return read_sprites(self.drawables, self._target(), self.sprites, folder, alpha)

    def _options(self) -> dict:
        """The dialog's options at the preview's size; while a value is being typed and is not
        valid yet, its last valid one."""
        self.values = option_arguments(self.config, self.values)
        options = client.chosen_options(self.values)
        longer_side = max(self.image.get_width(), self.image.get_height())
        options["size"] = min(options.get("size") or longer_side, longer_side, PREVIEW_SIZE)
        return options

    def tick(self) -> bool:
        """Send the settled change, show the frames that came; False once the dialog has closed
        (GLib then stops calling it)."""
        if self.closed:
            return False
        live = self.live
        if live is None or live.state not in ("starting", "live"):
            return True
        if self.config.get_property("sprites") != self.sprites:      # other sprites: start afresh
            self.worker.send(live.stop_request())
            self.finished_folders.append(live.folder)
            self.start()
            return True
        try:
            update = live.poll()
            if update is not None:
                self.worker.send(update)
        except client.WorkerError as exc:
            live.worker_stopped(f": {exc}")
        new_frame = live.handle_waiting(self.worker)
        self.show(live.preview if new_frame else None, live.status_line())
        return True

    def stop(self) -> None:
        if self.live is not None and self.live.state in ("starting", "live"):
            self.worker.send(self.live.stop_request())
        self.show(None, "")

    def close(self) -> None:
        """The dialog closed: end the session and the worker (their files go with them)."""
        self.closed = True
        if self.worker is not None:
            self.worker.kill()
        for folder in self.finished_folders + ([self.live.folder] if self.live is not None else []):
            client.remove_job_folder(folder)
        self.worker = self.live = None


def option_arguments(config, last_valid: dict | None = None) -> dict:
    """The fit options' arguments, by option name, checked against the option schema. A value
    that is not valid is refused, or (given `last_valid`, a dialog's earlier values) replaced by
    its last valid one."""
    values = {}
    for option in shown_options():
        name, value = option["name"], config.get_property(argument_name(option))
        problem = client.option_problem(option, value)
        if problem and last_valid is None:
            raise PluginError(problem[0].upper() + problem[1:])
        if not problem:
            values[name] = value
        elif name in last_valid:
            values[name] = last_valid[name]
    return values


def shown_options() -> list[dict]:
    """The fit options the procedure takes: the schema's basic ones, then its advanced ones."""
    return client.shown_options(client.BASIC) + client.shown_options(client.ADVANCED)


def argument_name(option: dict) -> str:
    return option["name"].replace("_", "-")


def add_option_argument(procedure, option: dict, flags) -> None:
    """One procedure argument for an option, typed, ranged and defaulted as the schema says."""
    name, label = argument_name(option), option["name"].replace("_", " ").capitalize()
    help, default = option["help"], client.control_default(option)
    if option["type"] in ("int", "float"):
        low, high = option["range"]
        if client.has_automatic(option):
            low = client.automatic_value(option)
            help += f" ({low}: {'the preset' if 'presets' in option else 'automatic'})"
        add = procedure.add_int_argument if option["type"] == "int" else procedure.add_double_argument
        add(name, label, help, low, high, default, flags)
    elif option["type"] == "bool":
        procedure.add_boolean_argument(name, label, help, default, flags)
    else:
        if option.get("choices"):
            help += f" ({', '.join(option['choices'])})"
        procedure.add_string_argument(name, label, help, str(default), flags)


def _progress(event: dict) -> None:
    Gimp.progress_update(0.9 * event["iteration"] / max(1, event["total"]))
    if event.get("psnr") is not None:
        Gimp.progress_set_text(f"SpriteFit: iteration {event['iteration']}/{event['total']}, "
                               f"PSNR {event['psnr']:.2f} dB")


def apply_result(image, manifest: dict):
    """One layer group (background + one layer per sprite, bottom first in the manifest) on top
    of the image, as one undo step, with the Layers dialog frozen while it fills."""
    if (image.get_width(), image.get_height()) != (manifest["width"], manifest["height"]):
        raise PluginError("The image changed size during the fit; run SpriteFit again.")
    total = len(manifest["layers"])
    image.undo_group_start()
    image.freeze_layers()
    try:
        group = Gimp.GroupLayer.new(image, f"{RESULT_GROUP_PREFIX}{total} sprites)")
        image.insert_layer(group, None, 0)
        if manifest.get("background") is not None:
            r, g, b = (max(0, min(255, round(c * 255))) for c in manifest["background"])
            _add_layer(image, group, "background", 0, 0, manifest["width"], manifest["height"],
                       bytes((r, g, b, 255)) * (manifest["width"] * manifest["height"]), 1.0)
        places = {}
        for i, (record, data) in enumerate(client.iter_patches(manifest)):
            layer = _add_layer(image, group, record["name"], record["x"], record["y"], record["width"],
                               record["height"], data, record["opacity"])
            places[str(layer.get_tattoo())] = [client.instance_index(record["name"]), record["x"], record["y"]]
            if i % 50 == 0:
                Gimp.progress_update(0.9 + 0.1 * i / max(1, total))
        with open(os.path.join(manifest["folder"], manifest["scene"]), "rb") as f:
            image.attach_parasite(Gimp.Parasite.new(SCENE_PARASITE, Gimp.PARASITE_PERSISTENT, f.read()))
        image.attach_parasite(Gimp.Parasite.new(PLACES_PARASITE, Gimp.PARASITE_PERSISTENT,
                                                json.dumps(places).encode()))
    finally:
        image.thaw_layers()
        image.undo_group_end()
    return group


def _add_layer(image, group, name, x, y, width, height, data, opacity):
    # "Normal (legacy)" composites in sRGB values, as the renderer (and Krita, and Photoshop) does;
    # GIMP's Normal mode works in linear light, which darkens the edges of translucent sprites.
    # (Setting each layer's composite space instead costs ~30 ms a layer at 1,000 layers.)
    layer = Gimp.Layer.new(image, name, width, height, Gimp.ImageType.RGBA_IMAGE, opacity * 100.0,
                           Gimp.LayerMode.NORMAL_LEGACY)
    image.insert_layer(layer, group, 0)          # position 0: on top of what was added before
    layer.set_offsets(x, y)
    buffer = layer.get_buffer()
    buffer.set(Gegl.Rectangle.new(0, 0, width, height), BABL_FORMAT, data)
    buffer.flush()
    layer.update(0, 0, width, height)
    return layer


# --- the engine ------------------------------------------------------------------------------------

def set_up_engine(action: str, python: str, torch: str) -> str:
    """Install (or upgrade, or repair), uninstall, or report the managed engine; returns what to
    tell the user. GIMP's progress bar shows each step and pip's packages."""
    engine = engine_setup.Engine()
    if action not in ENGINE_ACTIONS:
        raise PluginError(f"action must be one of {', '.join(ENGINE_ACTIONS)}, not {action!r}")
    if action == "status":
        status = engine.status()
        return status.reason if status.state == engine_setup.READY else \
            status.then("run Set up engine with the action install.")
    if action == "uninstall":
        try:
            engine.uninstall()
        except engine_setup.EngineError as exc:
            raise PluginError(str(exc)) from None
        return "SpriteFit's engine was removed."
    Gimp.progress_init("SpriteFit: setting up the engine")
    options = engine_setup.InstallOptions(python=python or None, torch=torch or "auto",
                                          wheel_folders=engine_setup.plugin_wheel_folders(os.path.dirname(WORKER_CONFIG)))

    def progress(fraction, message):
        Gimp.progress_update(fraction)
        Gimp.progress_set_text(f"SpriteFit: {message}")

    def log(line):
        sys.stderr.write(f"SpriteFit engine: {line}\n")

    try:
        status = engine_setup.Installer(engine, options, progress, log).run()
    except engine_setup.EngineError as exc:
        raise PluginError(str(exc)) from None
    finally:
        Gimp.progress_end()
    return status.detail


def run_engine(procedure, config, _data):
    if config.get_property("run-mode") == Gimp.RunMode.INTERACTIVE and not _dialog(procedure, config, ENGINE_PROCEDURE):
        return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
    try:
        message = set_up_engine(config.get_property("action"), config.get_property("python"),
                                config.get_property("torch"))
    except PluginError as exc:
        return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR,
                                           GLib.Error.new_literal(Gimp.PlugIn.error_quark(), str(exc), 0))
    Gimp.message(message)
    return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())


def _dialog(procedure, config, name: str, note: str | None = None, advanced: tuple = (),
            preview: DialogPreview | None = None) -> bool:
    """GIMP's dialog for the procedure's arguments, with a note on top, the `advanced` ones
    folded in an expander and a live preview at the bottom; False when cancelled."""
    gi.require_version("GimpUi", "3.0")
    from gi.repository import GimpUi
    GimpUi.init(name)
    dialog = GimpUi.ProcedureDialog(procedure=procedure, config=config)
    shown = [spec.get_name() for spec in procedure.get_arguments()
             if spec.get_name() not in ("run-mode", "image", "drawables") and spec.get_name() not in advanced]
    if note:
        dialog.get_label("spritefit-note", note, False, False)
        shown.insert(0, "spritefit-note")
    if advanced:
        dialog.get_label("spritefit-advanced-title", "Advanced", False, False)
        dialog.fill_box("spritefit-advanced", list(advanced))
        dialog.fill_expander("spritefit-advanced-expander", "spritefit-advanced-title", False, "spritefit-advanced")
        shown.append("spritefit-advanced-expander")
    dialog.fill(shown)
    if preview is not None:
        _add_preview(dialog, preview)
    accepted = dialog.run()
    dialog.destroy()
    return accepted


def _add_preview(dialog, preview: DialogPreview) -> None:
    """A "Live preview" check box, the frame and a status line under the dialog's arguments."""
    gi.require_version("Gtk", "3.0")
    from gi.repository import GdkPixbuf, Gtk
    toggle = Gtk.CheckButton.new_with_label("Live preview (follows the options; OK runs the full fit)")
    picture, status = Gtk.Image(), Gtk.Label(label="")
    status.set_line_wrap(True)
    box = dialog.get_content_area()
    for widget in (toggle, picture, status):
        box.pack_start(widget, False, False, 4)

    def show(path: str | None, message: str) -> None:
        status.set_text(message)
        if path:
            picture.set_from_pixbuf(GdkPixbuf.Pixbuf.new_from_file_at_scale(path, PREVIEW_SIZE, PREVIEW_SIZE, True))

    preview.show = show
    toggle.connect("toggled", lambda button: preview.start() if button.get_active() else preview.stop())
    GLib.timeout_add(PREVIEW_TICK_MS, preview.tick)
    box.show_all()


# --- the procedure ------------------------------------------------------------------------------------

def engine_note() -> str | None:
    """What the fit dialog says when no engine can run the fit."""
    try:
        worker_python()
    except PluginError as exc:
        return str(exc)
    return None


def run(procedure, run_mode, image, drawables, config, _data):
    if run_mode == Gimp.RunMode.INTERACTIVE:
        advanced = tuple(argument_name(o) for o in client.shown_options(client.ADVANCED))
        preview = DialogPreview(image, drawables, config)
        try:
            accepted = _dialog(procedure, config, PROCEDURE, engine_note(), advanced, preview)
        finally:
            preview.close()
        if not accepted:
            return procedure.new_return_values(Gimp.PDBStatusType.CANCEL, GLib.Error())
    try:
        manifest = fit(image, drawables, config)
        start = time.monotonic()
        try:
            apply_result(image, manifest)
        finally:
            client.remove_job_folder(manifest["folder"])
        sys.stderr.write(f"SpriteFit: added {len(manifest['layers'])} sprite layers in "
                         f"{time.monotonic() - start:.2f} s\n")
    except PluginError as exc:
        Gimp.progress_end()
        return procedure.new_return_values(Gimp.PDBStatusType.EXECUTION_ERROR,
                                           GLib.Error.new_literal(Gimp.PlugIn.error_quark(), str(exc), 0))
    Gimp.progress_end()
    Gimp.displays_flush()
    return procedure.new_return_values(Gimp.PDBStatusType.SUCCESS, GLib.Error())


class SpriteFit(Gimp.PlugIn):
    def do_query_procedures(self):
        return [PROCEDURE, ENGINE_PROCEDURE]

    def do_create_procedure(self, name):
        if name == ENGINE_PROCEDURE:
            return self._engine_procedure(name)
        procedure = Gimp.ImageProcedure.new(self, name, Gimp.PDBProcType.PLUGIN, run, None)
        procedure.set_image_types("RGB*")
        procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.DRAWABLE
                                       | Gimp.ProcedureSensitivityMask.DRAWABLES)
        procedure.set_menu_label("_Fit…")
        procedure.add_menu_path(MENU)
        procedure.set_documentation(
            "Reproduce a layer with copies of sprites",
            "Fits copies of the selected layers (or a built-in pack: sprites 'pack:shapes', or a folder: "
            "'folder:/path') to the target layer, and adds them as a layer group, one layer per sprite.",
            name)
        procedure.set_attribution("SpriteFit", "SpriteFit", "2026")
        flags = GObject.ParamFlags.READWRITE
        procedure.add_layer_argument("target", "_Target", "The layer to reproduce", True, flags)
        procedure.add_string_argument("sprites", "_Sprites", "'layers' (the selected layers), 'pack:<name>' "
                                      "(shapes, brush, leaves) or 'folder:<path>'", "layers", flags)
        for option in shown_options():         # the fit's options, from the option schema
            add_option_argument(procedure, option, flags)
        procedure.add_boolean_argument("refit-locked", "_Refit the last result around locked layers",
                                       "Start from the last SpriteFit result as you left it: moved layers start "
                                       "where they are, locked layers (position or pixels) stay exactly",
                                       False, flags)
        return procedure

    def _engine_procedure(self, name):
        procedure = Gimp.Procedure.new(self, name, Gimp.PDBProcType.PLUGIN, run_engine, None)
        procedure.set_sensitivity_mask(Gimp.ProcedureSensitivityMask.ALWAYS)
        procedure.set_menu_label("Set up _engine…")
        procedure.add_menu_path(MENU)
        procedure.set_documentation(
            "Install, upgrade, repair or remove SpriteFit's engine",
            "Creates a private Python environment with SpriteFit and PyTorch in your user data folder, "
            "checks it with a one-iteration fit, and only then replaces the engine in use.", name)
        procedure.set_attribution("SpriteFit", "SpriteFit", "2026")
        flags = GObject.ParamFlags.READWRITE
        procedure.add_enum_argument("run-mode", "Run mode", "The run mode", Gimp.RunMode,
                                    Gimp.RunMode.INTERACTIVE, flags)
        procedure.add_string_argument("action", "_Action", "install (also upgrades and repairs), uninstall or status",
                                      "install", flags)
        procedure.add_string_argument("python", "_Python", "Python 3.10+ to build the engine from (empty: find one)",
                                      "", flags)
        procedure.add_string_argument("torch", "Py_Torch build", "auto (CUDA when an NVIDIA driver is present), "
                                      "cpu or cuda", "auto", flags)
        return procedure


if __name__ == "__main__":
    Gimp.main(SpriteFit.__gtype__, sys.argv)
