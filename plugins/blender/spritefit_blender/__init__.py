"""SpriteFit for Blender: Image Editor > Sidebar > SpriteFit.

Reproduces an image with copies of sprites (images of the blend file whose names start with a
prefix, a built-in pack, or a folder), fitted by the SpriteFit worker in its own process. The
result is a collection with one textured quad per placed sprite, an orthographic camera that
frames it, and the composite as an image; one Undo removes it. Images chosen as loss mask,
keep-in and keep-out constrain the fit, and "Refit last result" starts from the newest result as
the user left it (moved quads start where they are, quads with a locked location stay exactly).
`bpy.ops.spritefit.run()` from a script (or `blender -b`) runs synchronously; from the UI it runs
in the background with progress, and Esc cancels (keeping nothing). Live (live.py) follows the
target image while you paint on it and shows each frame in the image "SpriteFit Live"; its Apply
adds the current arrangement as a result, one Undo step.

The engine (SpriteFit with PyTorch in a private environment, spritefit_engine) is installed,
upgraded, repaired and removed from Edit > Preferences > Add-ons > SpriteFit; the panel shows its
state and runs only once it is ready (or a Worker Python is set by hand).
"""
from __future__ import annotations

import json
import os
import time

bl_info = {
    "name": "SpriteFit",
    "author": "SpriteFit",
    "version": (0, 1, 0),
    "blender": (3, 4, 0),
    "location": "Image Editor > Sidebar > SpriteFit",
    "description": "Reproduce an image with thousands of sprites fitted by a differentiable renderer",
    "category": "Image",
}

import bpy  # noqa: E402
from bpy.props import EnumProperty, PointerProperty, StringProperty  # noqa: E402

from . import build  # noqa: E402
from . import live  # noqa: E402
from . import options_ui  # noqa: E402
from . import spritefit_client as client  # noqa: E402
from . import spritefit_engine as engine_setup  # noqa: E402

PIXEL_FORMAT = "RGBAF32"     # Blender's float pixels, bottom row first
WORKER_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "worker.json")


class SpriteFitError(Exception):
    """Reported to the user; nothing was added to the blend file."""


def override_python(settings) -> str | None:
    """The advanced setting: the panel's Worker Python, else worker.json's (a development install)."""
    if settings.worker_python:
        return bpy.path.abspath(settings.worker_python)
    try:
        with open(WORKER_CONFIG, encoding="utf-8") as f:
            return json.load(f).get("python") or None
    except (OSError, ValueError):
        return None


def configured_python(settings) -> str:
    """$SPRITEFIT_PYTHON, the override, else the managed engine (WorkerError saying what to do)."""
    try:
        return engine_setup.engine_python(override_python(settings))
    except engine_setup.EngineNotReady as exc:
        raise client.WorkerError(exc.status.then("install it in Edit > Preferences > Add-ons > SpriteFit.")) from None


# --- the engine, from the add-on's preferences ---------------------------------------------------------

INSTALL: dict = {"running": None, "error": "", "log": []}   # the install in progress (one per Blender)


def wheel_folders() -> list[str]:
    return engine_setup.plugin_wheel_folders(os.path.dirname(os.path.abspath(__file__)))


class SpriteFitPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__
    engine_python: StringProperty(name="Python", subtype="FILE_PATH",
                                  description="Python 3.10+ to build the engine from (empty: Blender's own, "
                                              "else one found on this computer)")
    torch_build: EnumProperty(name="PyTorch", default="auto", items=[
        ("auto", "Auto", "The CUDA build when an NVIDIA driver is present, else the CPU build"),
        ("cpu", "CPU", "The CPU build (smaller)"), ("cuda", "CUDA", "The CUDA build (NVIDIA GPUs)")])

    def draw(self, context):
        layout = self.layout
        running = INSTALL["running"]
        status = engine_setup.Engine().status()
        box = layout.box()
        box.label(text=running.message if running else (INSTALL["error"] or status.detail),
                  icon="CHECKMARK" if status.state == engine_setup.READY else "INFO")
        if running:
            box.label(text=f"{100 * running.fraction:.0f} %")
            box.operator(SPRITEFIT_OT_engine_cancel.bl_idname, text="Cancel install")
        else:
            row = box.row()
            row.operator(SPRITEFIT_OT_engine_install.bl_idname, text=status.action or "Install")
            if status.state != engine_setup.NOT_INSTALLED:
                row.operator(SPRITEFIT_OT_engine_uninstall.bl_idname, text="Uninstall")
        layout.prop(self, "engine_python")
        layout.prop(self, "torch_build")
        for line in INSTALL["log"][-8:]:
            layout.label(text=line[:120])


def install_options(context) -> engine_setup.InstallOptions:
    preferences = context.preferences.addons[__package__].preferences
    python = bpy.path.abspath(preferences.engine_python) if preferences.engine_python else None
    return engine_setup.InstallOptions(python=python, torch=preferences.torch_build, wheel_folders=wheel_folders())


class SPRITEFIT_OT_engine_install(bpy.types.Operator):
    """Install SpriteFit's engine (or upgrade or repair it): a new one is built and checked beside the
    one in use, which it replaces only when it works"""
    bl_idname = "spritefit.engine_install"
    bl_label = "Install SpriteFit engine"

    def execute(self, context):
        """Synchronous: scripts and background mode."""
        INSTALL["log"] = []
        try:
            status = engine_setup.Installer(engine_setup.Engine(), install_options(context),
                                            on_log=INSTALL["log"].append).run()
        except engine_setup.EngineError as exc:
            INSTALL["error"] = str(exc)
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        INSTALL["error"] = ""
        self.report({"INFO"}, status.detail)
        return {"FINISHED"}

    def invoke(self, context, event):
        """From Preferences: on a thread, polled by a timer; Blender stays usable."""
        return {"FINISHED"} if start_install(context) else {"CANCELLED"}


def start_install(context) -> bool:
    """Start an install on a thread, polled by a timer; False when one is running already."""
    if INSTALL["running"] is not None:
        return False
    running = engine_setup.BackgroundInstall(engine_setup.Engine(), install_options(context))
    INSTALL.update(running=running, error="", log=running.log)
    bpy.app.timers.register(_poll_install, first_interval=0.3)
    return True


def _poll_install():
    running = INSTALL["running"]
    for window in bpy.context.window_manager.windows:
        for area in window.screen.areas:
            area.tag_redraw()
    if running is None or not running.done.is_set():
        return 0.3
    INSTALL.update(running=None, error=running.error or "")
    return None


class SPRITEFIT_OT_engine_cancel(bpy.types.Operator):
    """Stop the install; the engine in use stays as it was"""
    bl_idname = "spritefit.engine_cancel"
    bl_label = "Cancel engine install"

    def execute(self, context):
        if INSTALL["running"] is not None:
            INSTALL["running"].cancel()
        return {"FINISHED"}


class SPRITEFIT_OT_engine_uninstall(bpy.types.Operator):
    """Remove SpriteFit's engine from this computer"""
    bl_idname = "spritefit.engine_uninstall"
    bl_label = "Uninstall SpriteFit engine"

    def execute(self, context):
        try:
            engine_setup.Engine().uninstall()
        except engine_setup.EngineError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        return {"FINISHED"}


class SpriteFitSettings(bpy.types.PropertyGroup):
    target: PointerProperty(name="Target", type=bpy.types.Image, description="The image to reproduce")
    sprite_source: EnumProperty(name="Sprites", default="IMAGES", items=[
        ("IMAGES", "Images", "Images of this blend file whose names start with the prefix"),
        ("PACK", "Built-in pack", "One of SpriteFit's sprite packs"),
        ("FOLDER", "Folder", "A folder of PNG, WebP or JPEG images"),
        ("REFIT", "Refit last result", "Start from the newest SpriteFit result as you left it: moved, turned or "
                                       "resized quads start where they are, quads whose location is locked stay "
                                       "exactly, the rest is fitted around them")])
    sprite_prefix: StringProperty(name="Name prefix", default="sprite")
    pack: EnumProperty(name="Pack", items=[(p, p.title(), "") for p in ("shapes", "brush", "leaves")])
    folder: StringProperty(name="Folder", subtype="DIR_PATH")
    mask: PointerProperty(name="Loss mask", type=bpy.types.Image,
                          description="Where it is dark (or transparent) the target is ignored")
    keep_in: PointerProperty(name="Keep in", type=bpy.types.Image,
                             description="Sprites stay wholly inside its bright (or opaque) part")
    keep_out: PointerProperty(name="Keep out", type=bpy.types.Image,
                              description="Sprites stay wholly outside its bright (or opaque) part")
    worker_python: StringProperty(name="Worker Python", subtype="FILE_PATH",
                                  description="python of the environment where SpriteFit is installed")
    show_advanced: bpy.props.BoolProperty(name="Advanced", default=False)
    progress: bpy.props.FloatProperty(min=0.0, max=1.0)
    status: StringProperty()


# The fit's options (n, iters, preset, colour mode, sprite alpha, ...), one property each, from
# the option schema; Blender reads them from the annotations when the class is registered.
SpriteFitSettings.__annotations__.update(options_ui.option_properties())


class Job:
    """One run's inputs, written into a new job folder: the target, sprites, masks and options, and
    for a refit the result collection it starts from (hidden once the new result is added)."""

    def __init__(self, context):
        settings = context.scene.spritefit
        if settings.target is None:
            raise SpriteFitError("Choose the target image")
        self.refitted = build.last_result(context.scene) if settings.sprite_source == "REFIT" else None
        if settings.sprite_source == "REFIT" and self.refitted is None:
            raise SpriteFitError("Refit needs an earlier SpriteFit result in this scene: run SpriteFit once first")
        self.folder = client.new_job_folder("blender-")
        try:
            self.target = write_image(self.folder, "target", settings.target)
            self.sprites = {} if self.refitted else _sprites(settings, self.folder)
            self.inputs = {field: write_image(self.folder, field, getattr(settings, field))
                           for field in client.MASK_LAYER_NAMES.values() if getattr(settings, field) is not None}
            self.options = client.masked_options(options_ui.chosen(settings), self.inputs)
            if self.refitted:
                scene, moves = build.read_refit(self.refitted)
                self.inputs.update(client.refit_inputs(self.folder, scene, moves, self.refitted[build.CANVAS][0],
                                                       self.options))
        except BaseException:
            client.remove_job_folder(self.folder)
            raise

    def _arguments(self) -> tuple:
        return "blender", self.folder, self.target, self.sprites, self.options, PIXEL_FORMAT

    def request(self) -> bytes:
        return client.run_request(*self._arguments(), inputs=self.inputs)

    def run(self, worker):
        return worker.run(*self._arguments(), inputs=self.inputs)

    def apply(self, context, manifest: dict):
        """Add the result to the blend file and hide the result it refitted (one undo step)."""
        collection = apply_result(context, manifest)
        if self.refitted is not None:
            self.refitted.hide_viewport = self.refitted.hide_render = True
        return collection

    def close(self) -> None:
        client.remove_job_folder(self.folder)


def write_image(folder: str, name: str, image) -> dict:
    """An image datablock's pixels into the job folder, as the run request's descriptor."""
    data, width, height = build.image_rgba_bytes(image)
    if width == 0 or height == 0:
        raise SpriteFitError(f"The image '{image.name}' has no pixels (is its file missing?)")
    return client.write_pixels(folder, f"{name}.raw", data, width, height, PIXEL_FORMAT)


def _sprites(settings, folder: str) -> dict:
    if settings.sprite_source == "PACK":
        return client.file_sprites("pack", settings.pack, settings.sprite_alpha)
    if settings.sprite_source == "FOLDER":
        if not settings.folder:
            raise SpriteFitError("Choose the folder of sprite images")
        return client.file_sprites("folder", bpy.path.abspath(settings.folder), settings.sprite_alpha)
    images = [i for i in bpy.data.images if i.name.startswith(settings.sprite_prefix) and i != settings.target]
    if not images:
        raise SpriteFitError(f"No images named '{settings.sprite_prefix}…' to use as sprites: "
                             "rename them, change the prefix, or choose a pack or a folder")
    return {"layers": [dict(write_image(folder, f"sprite-{k}", image), name=image.name)
                       for k, image in enumerate(images)]}


def apply_result(context, manifest: dict):
    """Add the result to the blend file (called once, when the operator finishes)."""
    sprite_images = {}
    for k, sprite in enumerate(manifest["sprites"]):
        image = bpy.data.images.load(os.path.join(manifest["folder"], sprite["file"]))
        image.name = f"SpriteFit sprite {sprite['name']}"
        image.pack()
        sprite_images[k] = image
    with open(os.path.join(manifest["folder"], manifest["scene"]), encoding="utf-8") as f:
        scene_json = f.read()
    collection, camera, composite = build.build_result(context, manifest, sprite_images, scene_json,
                                                       client.instance_index)
    return collection


class SPRITEFIT_OT_run(bpy.types.Operator):
    """Fit sprites to the target image and add them as a collection of textured quads"""
    bl_idname = "spritefit.run"
    bl_label = "SpriteFit"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        """Synchronous: scripts and background mode."""
        settings = context.scene.spritefit
        try:
            python = configured_python(settings)
            job = Job(context)
            try:
                with client.WorkerProcess(python) as worker:
                    manifest = job.run(worker)
                start = time.monotonic()
                collection = job.apply(context, manifest)
                seconds = time.monotonic() - start
            finally:
                job.close()
        except (SpriteFitError, client.WorkerError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        settings.status = f"Added '{collection.name}' in {seconds:.2f} s"
        return {"FINISHED"}

    def invoke(self, context, event):
        """From the UI: the worker runs while Blender stays usable; Esc cancels."""
        settings = context.scene.spritefit
        try:
            python = configured_python(settings)
            self.job = Job(context)
        except (SpriteFitError, client.WorkerError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        try:
            self.worker = client.WorkerProcess(python)
        except client.WorkerError as exc:
            self.job.close()
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.worker.send(self.job.request())
        window_manager = context.window_manager
        self.timer = window_manager.event_timer_add(0.2, window=context.window)
        window_manager.modal_handler_add(self)
        window_manager.progress_begin(0, 100)
        settings.status, settings.progress = "Fitting…", 0.0
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        settings = context.scene.spritefit
        if event.type == "ESC":
            self._stop(context)
            settings.status = "Cancelled; nothing was added"
            return {"CANCELLED"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        try:
            while not self.worker.events.empty():
                message = self.worker.next_event(0)
                kind = message.get("event")
                if kind == "progress":
                    settings.progress = message["iteration"] / max(1, message["total"])
                    settings.status = f"Iteration {message['iteration']}/{message['total']}"
                    context.window_manager.progress_update(int(100 * settings.progress))
                elif kind == "error":
                    raise client.WorkerError(message.get("message", "the worker reported an error"))
                elif kind in ("result", "cancelled"):
                    collection = self.job.apply(context, client.read_manifest(message["manifest"]))
                    self._stop(context)
                    settings.status = f"Added '{collection.name}'"
                    return {"FINISHED"}
            if self.worker.process.poll() is not None and self.worker.events.empty():
                raise client.WorkerError(f"the SpriteFit worker stopped (exit status {self.worker.process.returncode})")
        except client.WorkerError as exc:
            self._stop(context)
            settings.status = str(exc)
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        for area in context.screen.areas:
            area.tag_redraw()
        return {"PASS_THROUGH"}

    def _stop(self, context) -> None:
        context.window_manager.event_timer_remove(self.timer)
        context.window_manager.progress_end()
        self.worker.kill()
        self.job.close()


class SPRITEFIT_OT_live(bpy.types.Operator):
    """Follow the target image while you paint on it: each settled change refits the sprites it
    touches, shown in the image 'SpriteFit Live'; Apply adds the current arrangement"""
    bl_idname = "spritefit.live"
    bl_label = "SpriteFit Live"

    def execute(self, context):
        if live.running():
            live.stop()
            context.scene.spritefit.status = "Live stopped"
            return {"FINISHED"}
        settings = context.scene.spritefit
        try:
            if settings.target is None:
                raise SpriteFitError("Choose the target image")
            if settings.sprite_source == "REFIT":
                raise SpriteFitError("Live starts from sprite images, a pack or a folder, not from a refit")
            live.start(settings, configured_python(settings), LIVE_HOST)
        except (SpriteFitError, client.WorkerError) as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        return {"FINISHED"}


class SPRITEFIT_OT_live_apply(bpy.types.Operator):
    """Add live mode's current arrangement as a collection of textured quads (one Undo removes it)"""
    bl_idname = "spritefit.live_apply"
    bl_label = "Apply live result"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context):
        return live.session() is not None and live.session().state == "live"

    def execute(self, context):
        try:
            context.scene.spritefit.status = live.apply()
        except client.WorkerError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        return {"FINISHED"}


LIVE_HOST = live.Host(write_image=write_image, sprites=_sprites, pixel_format=PIXEL_FORMAT,
                      add_result=lambda manifest: apply_result(bpy.context, manifest))


class SPRITEFIT_PT_panel(bpy.types.Panel):
    bl_label = "SpriteFit"
    bl_space_type = "IMAGE_EDITOR"
    bl_region_type = "UI"
    bl_category = "SpriteFit"

    def draw(self, context):
        settings = context.scene.spritefit
        layout = self.layout
        layout.prop(settings, "target")
        layout.prop(settings, "sprite_source")
        detail = {"IMAGES": "sprite_prefix", "PACK": "pack", "FOLDER": "folder"}.get(settings.sprite_source)
        if detail:
            layout.prop(settings, detail)
        if settings.sprite_source == "REFIT":
            refitted = build.last_result(context.scene)
            layout.label(text=f"From '{refitted.name}'; lock a quad's location to keep it" if refitted
                         else "No SpriteFit result in this scene yet", icon="INFO")
        constraints = layout.column(heading="Constraints")
        for name in client.MASK_LAYER_NAMES.values():
            constraints.prop(settings, name)
        options_ui.draw(layout, settings)
        blocked = engine_blocked_reason(settings)
        if blocked:
            layout.label(text=blocked, icon="ERROR")
        row = layout.row()
        row.enabled = blocked is None
        row.operator(SPRITEFIT_OT_run.bl_idname, text="Run")
        row.operator(SPRITEFIT_OT_live.bl_idname, text="Live", icon="REC", depress=live.running())
        if live.running():
            layout.operator(SPRITEFIT_OT_live_apply.bl_idname, text="Apply")
        if settings.status:
            layout.label(text=settings.status)


def engine_blocked_reason(settings) -> str | None:
    """Why Run is disabled in the panel, or None."""
    try:
        configured_python(settings)
    except client.WorkerError as exc:
        return str(exc)
    return None


CLASSES = (SpriteFitSettings, SpriteFitPreferences, SPRITEFIT_OT_engine_install, SPRITEFIT_OT_engine_cancel,
           SPRITEFIT_OT_engine_uninstall, SPRITEFIT_OT_run, SPRITEFIT_OT_live, SPRITEFIT_OT_live_apply,
           SPRITEFIT_PT_panel)


@bpy.app.handlers.persistent
def _end_live_on_load(*_args):
    """Opening another blend file ends live mode (its target belongs to the file being closed)."""
    live.end_now()


def register():
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.spritefit = PointerProperty(type=SpriteFitSettings)
    bpy.app.handlers.load_pre.append(_end_live_on_load)


def unregister():
    live.end_now()
    if _end_live_on_load in bpy.app.handlers.load_pre:
        bpy.app.handlers.load_pre.remove(_end_live_on_load)
    del bpy.types.Scene.spritefit
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
