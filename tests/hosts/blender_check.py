"""Run by `blender -b --factory-startup -P blender_check.py -- ZIP TARGET OUT`: installs the
SpriteFit add-on from its zip as a user would, runs the operator on a small image with two
sprite images, and writes what the blend file then holds to OUT (JSON)."""
import json
import os
import sys
import traceback

import bpy

zip_path, target_path, out = sys.argv[sys.argv.index("--") + 1:][:3]
count = int(sys.argv[sys.argv.index("--") + 4]) if len(sys.argv) > sys.argv.index("--") + 4 else 40
report = {}


def refusal():
    """What the operator reports when it refuses to run ("accepted" if it ran)."""
    try:
        bpy.ops.spritefit.run()
        return "accepted"
    except RuntimeError as exc:
        return str(exc)


def sprite_image(name, rgba, size):
    image = bpy.data.images.new(name, size, size, alpha=True)
    image.pixels.foreach_set([c for pixel in rgba for c in pixel])
    return image


try:
    bpy.ops.preferences.addon_install(filepath=zip_path)
    bpy.ops.preferences.addon_enable(module="spritefit_blender")
    report["operator_found"] = hasattr(bpy.ops.spritefit, "run")
    scene = bpy.context.scene
    settings = scene.spritefit
    settings.target = bpy.data.images.load(target_path)
    disc = [(1.0, 0.0, 0.0, 1.0) if (x - 5.5) ** 2 + (y - 5.5) ** 2 < 30 else (0.0, 0.0, 0.0, 0.0)
            for y in range(12) for x in range(12)]
    sprite_image("sprite disc", disc, 12)
    sprite_image("sprite square", [(0.0, 0.0, 1.0, 1.0)] * 64, 8)
    settings.count, settings.iterations, settings.working_size, settings.preset = count, 20, 96, "fast"
    objects_before = len(bpy.data.objects)
    report["result"] = sorted(bpy.ops.spritefit.run())
    report["status"] = settings.status
    collection = next(c for c in bpy.data.collections if c.name.startswith("SpriteFit ("))
    quads = [o for o in collection.objects if o.type == "MESH"]
    report["collection"] = collection.name
    report["objects_added"] = len(bpy.data.objects) - objects_before
    report["quads"] = [{"name": o.name, "location": list(o.location), "angle": o.rotation_euler.z,
                        "scale": o.scale.x, "color": list(o.color), "image": o.data.materials[0].node_tree.nodes[0].image.name}
                       for o in sorted(quads, key=lambda o: o.location.z)]
    cameras = [o for o in collection.objects if o.type == "CAMERA"]
    report["camera"] = {"type": cameras[0].data.type, "ortho_scale": cameras[0].data.ortho_scale,
                        "location": list(cameras[0].location)} if cameras else None
    composite = bpy.data.images[collection.name]
    report["composite_size"] = list(composite.size)
    report["composite_packed"] = composite.packed_file is not None
    pixels = [0.0] * (composite.size[0] * composite.size[1] * 4)
    composite.pixels.foreach_get(pixels)
    report["composite"] = pixels
    report["scene"] = bpy.data.texts["SpriteFit scene.json"].as_string()

    # Bad input: reported, nothing added.
    objects = len(bpy.data.objects)
    settings.target = None
    report["no_target"] = refusal()
    settings.target = bpy.data.images.load(target_path)
    settings.sprite_prefix = "nothing-named-so"
    report["no_sprites"] = refusal()
    settings.sprite_prefix = "sprite"
    dying = out + ".dying-worker.sh"
    with open(dying, "w") as f:
        f.write("#!/bin/sh\necho '{\"event\": \"hello\", \"protocol\": 1}'\necho 'worker crashed' >&2\nexit 3\n")
    os.chmod(dying, 0o755)
    os.environ.pop("SPRITEFIT_PYTHON")      # so that the panel's setting is used
    settings.worker_python = dying
    report["dead_worker"] = refusal()
    report["objects_unchanged_after_bad_input"] = len(bpy.data.objects) == objects
except Exception:
    report["exception"] = traceback.format_exc()
with open(out, "w") as f:
    json.dump(report, f)
