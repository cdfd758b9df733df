# Fed to `gimp-console-3.0 -i --batch-interpreter=python-fu-eval -b - --quit` (code on stdin, so
# no imports of our own; gimp_pdb.py comes first): builds an image with a target layer and two sprite layers, runs the
# SpriteFit procedure as a script would, and writes what GIMP then holds to $CHECK_OUT (JSON).
import base64
import json
import os
import sys
import traceback

from gi.repository import Gegl, Gimp

out = os.environ["CHECK_OUT"]
width, height = int(os.environ["CHECK_WIDTH"]), int(os.environ["CHECK_HEIGHT"])
report = {}


def layer_with(image, name, rgba, w, h, x=0, y=0):
    layer = Gimp.Layer.new(image, name, w, h, Gimp.ImageType.RGBA_IMAGE, 100.0, Gimp.LayerMode.NORMAL)
    image.insert_layer(layer, None, 0)
    layer.set_offsets(x, y)
    buffer = layer.get_buffer()
    buffer.set(Gegl.Rectangle.new(0, 0, w, h), "R'G'B'A u8", rgba)
    buffer.flush()
    return layer


def pixels(drawable, w, h):
    return bytes(drawable.get_buffer().get(Gegl.Rectangle.new(0, 0, w, h), 1.0, "R'G'B'A u8", Gegl.AbyssPolicy.NONE))


def run_procedure(image, drawables, **arguments):
    return run_pdb("python-fu-spritefit", image=image, drawables=drawables, **arguments)


try:
    report["procedure_found"] = Gimp.get_pdb().lookup_procedure("python-fu-spritefit") is not None
    report["arguments"] = [spec.get_name() for spec in
                           Gimp.get_pdb().lookup_procedure("python-fu-spritefit").get_arguments()]
    image = Gimp.Image.new(width, height, Gimp.ImageBaseType.RGB)
    with open(os.environ["CHECK_TARGET"], "rb") as f:
        target = layer_with(image, "target", f.read(), width, height)
    disc = bytearray(12 * 12 * 4)
    for y in range(12):
        for x in range(12):
            if (x - 5.5) ** 2 + (y - 5.5) ** 2 < 30:
                disc[4 * (12 * y + x):4 * (12 * y + x) + 4] = bytes((255, 0, 0, 255))
    sprites = [layer_with(image, "disc", bytes(disc), 12, 12, 3, 4),
               layer_with(image, "square", bytes((0, 0, 255, 255)) * 64, 8, 8, 20, 5)]
    before = [layer.get_name() for layer in image.get_layers()]
    options = dict(target=target, n=int(os.environ["CHECK_N"]), iters=20, preset="fast",
                   size=max(width, height), **{"color-mode": "tint"})
    image.undo_disable()
    image.undo_enable()
    report["ok"], report["message"] = run_procedure(image, sprites, **options)
    layers = image.get_layers()
    report["names_before"], report["names_after"] = before, [layer.get_name() for layer in layers]
    group = layers[0]
    report["group_name"], report["is_group"] = group.get_name(), group.is_group()
    children = group.get_children()[::-1]                   # bottom first, like the manifest
    report["children"] = [{"name": c.get_name(), "offsets": list(c.get_offsets()[1:]), "width": c.get_width(),
                           "height": c.get_height(), "opacity": c.get_opacity()} for c in children]

    parasite = image.get_parasite("spritefit-scene")
    report["scene"] = bytes(parasite.get_data()).decode() if parasite is not None else None

    # Refit around a sprite layer the user moved and locked; then put it back for the composite.
    moved = children[len(children) // 2]
    _, mx, my = moved.get_offsets()
    moved.set_offsets(mx + 3, my + 2)
    moved.set_lock_position(True)
    report["moved"] = {"name": moved.get_name(), "offsets": [mx + 3, my + 2]}
    report["refit"] = run_procedure(image, sprites, **dict(options, **{"refit-locked": True}))
    refit_group = image.get_layers()[0]
    report["refit_scene"] = bytes(image.get_parasite("spritefit-scene").get_data()).decode()
    report["refit_children"] = [[c.get_name(), list(c.get_offsets()[1:])] for c in refit_group.get_children()]
    refit_group.set_visible(False)
    moved.set_lock_position(False)
    moved.set_offsets(mx, my)
    for layer in [target] + sprites:
        layer.set_visible(False)
    report["composite"] = base64.b64encode(pixels(image.merge_visible_layers(Gimp.MergeType.CLIP_TO_IMAGE),
                                                  width, height)).decode()

    # Bad input: each refused with a message, the image unchanged.
    gray = Gimp.Image.new(16, 16, Gimp.ImageBaseType.GRAY)
    gray_layer = Gimp.Layer.new(gray, "g", 16, 16, Gimp.ImageType.GRAYA_IMAGE, 100.0, Gimp.LayerMode.NORMAL)
    gray.insert_layer(gray_layer, None, 0)
    report["gray"] = run_procedure(gray, [gray_layer], target=gray_layer, n=5, iters=1)
    names = [layer.get_name() for layer in image.get_layers()]
    report["no_sprites"] = run_procedure(image, [target], **options)
    group_sprite = Gimp.GroupLayer.new(image, "a group")
    image.insert_layer(group_sprite, None, 0)
    report["group_sprite"] = run_procedure(image, [group_sprite], **options)
    empty = Gimp.Layer.new(image, "empty", width, height, Gimp.ImageType.RGBA_IMAGE, 100.0, Gimp.LayerMode.NORMAL)
    image.insert_layer(empty, None, 0)
    report["empty_target"] = run_procedure(image, sprites, **dict(options, target=empty))
    # A worker that dies before its result: point the plug-in at one.
    worker_json = os.path.join(os.environ["CHECK_PLUGIN_DIR"], "worker.json")
    dying = os.path.join(os.path.dirname(out), "dying-worker.sh")
    with open(dying, "w") as f:
        f.write("#!/bin/sh\necho '{\"event\": \"hello\", \"protocol\": 1}'\necho 'worker crashed' >&2\nexit 3\n")
    os.chmod(dying, 0o755)
    with open(worker_json) as f:
        real_worker = f.read()
    with open(worker_json, "w") as f:
        json.dump({"python": dying}, f)
    report["dead_worker"] = run_procedure(image, sprites, **options)
    with open(worker_json, "w") as f:
        f.write(real_worker)
    report["names_after_bad_input"] = [layer.get_name() for layer in image.get_layers()]
    report["names_expected_after_bad_input"] = ["empty", "a group"] + names
except Exception:
    report["exception"] = traceback.format_exc()
with open(out, "w") as f:
    json.dump(report, f)
sys.stderr.write("GIMP CHECK DONE\n")
