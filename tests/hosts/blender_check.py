"""Run by `blender -b --factory-startup -P blender_check.py -- ZIP TARGET OUT`: installs the
SpriteFit add-on from its zip as a user would, runs the operator on a small image with two
sprite images, refits that result after moving, turning and locking quads, fits again with a
keep-out image, follows a painted target in live mode, and writes what the blend file then holds to OUT (JSON)."""
import json
import os
import sys
import time
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


def quads_of(collection):
    return [{"name": o.name, "location": list(o.location), "angle": o.rotation_euler.z,
             "scale": o.scale.x, "color": list(o.color), "image": o.data.materials[0].node_tree.nodes[0].image.name}
            for o in sorted((o for o in collection.objects if o.type == "MESH"), key=lambda o: o.location.z)]


def newest_result():
    return max((c for c in bpy.data.collections if "spritefit_result" in c), key=lambda c: c["spritefit_result"])


def sprite_image(name, rgba, size):
    image = bpy.data.images.new(name, size, size, alpha=True)
    image.pixels.foreach_set([c for pixel in rgba for c in pixel])
    return image


def tick_until(live, done, seconds=120.0):
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        live.tick()
        time.sleep(live.TICK_S)
    return done()


def band_color(image, rows, color):
    """How far the band of `rows` (top-down, as fractions of the height) is from `color`, mean over RGB."""
    width, height = image.size
    pixels = [0.0] * (width * height * 4)
    image.pixels.foreach_get(pixels)
    top, bottom = int(rows[0] * height), int(rows[1] * height)
    total, count = 0.0, 0
    for y in range(height - bottom, height - top):          # Blender's rows run bottom first
        for x in range(width // 8, width - width // 8):
            k = 4 * (y * width + x)
            total += sum(abs(pixels[k + c] - color[c]) for c in range(3)) / 3
            count += 1
    return total / count


def live_steps(addon, settings):
    """Live on, paint a band onto the target image, a new frame follows it; an option changed in
    the panel brings another; Apply adds a collection; another target stops Live."""
    live, out = addon.live, {}
    settings.sprite_source, settings.pack, settings.n = "PACK", "shapes", 30
    out["start"] = sorted(bpy.ops.spritefit.live())
    out["running"] = live.running()
    out["first_frame"] = tick_until(live, lambda: live.session().state != "starting")
    out["state"], out["status_first"] = live.session().state, settings.status
    preview = bpy.data.images.get(live.PREVIEW_IMAGE)
    out["preview_size"] = list(preview.size) if preview else None
    band, color = (0.3, 0.55), (0.05, 0.8, 0.1)
    out["band_error_before"] = band_color(preview, band, color)
    target = settings.target
    width, height = target.size
    pixels = [0.0] * (width * height * 4)
    target.pixels.foreach_get(pixels)
    for y in range(height - int(band[1] * height), height - int(band[0] * height)):
        for x in range(width):
            pixels[4 * (y * width + x): 4 * (y * width + x) + 3] = color
    target.pixels.foreach_set(pixels)                    # a stroke across the target image
    stroked = time.monotonic()
    out["stroke_frame"] = tick_until(live, lambda: (live.session().last_frame or {}).get("scene_id", 0) >= 1)
    out["stroke_to_frame_s"] = time.monotonic() - stroked
    frame = live.session().last_frame
    out["frame"] = {k: frame.get(k) for k in ("scene_id", "frozen", "restarted", "psnr", "seconds")}
    out["band_error_after"] = band_color(bpy.data.images[live.PREVIEW_IMAGE], band, color)
    settings.n = 36                                      # an option changed in the panel
    out["option_frame"] = tick_until(live, lambda: live.session().last_frame.get("scene_id", 0) >= 2)
    with open(live.session().last_frame["scene"]) as f:
        out["option_instances"] = len(json.load(f)["instances"])
    out["status_live"] = settings.status
    collections = len(bpy.data.collections)
    out["apply"] = sorted(bpy.ops.spritefit.live_apply())
    out["collections_added"] = len(bpy.data.collections) - collections
    out["applied"] = newest_result().name
    out["status_applied"] = settings.status
    folder = live.session().folder
    settings.target = bpy.data.images.new("another target", 32, 32)     # switching the target stops Live
    out["stopped"] = tick_until(live, lambda: live.session().state == "stopped", 30)
    out["timer_ended"] = live.tick() is None and not live.running()
    out["folder_removed"] = not os.path.exists(folder)
    settings.target = target
    settings.sprite_source = "IMAGES"
    return out


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
    settings.n, settings.iters, settings.size, settings.preset = count, 20, 96, "fast"
    addon = __import__("spritefit_blender")
    report["option_properties"] = sorted(name for name in addon.options_ui.option_properties()
                                         if hasattr(settings, name))
    report["options_sent"] = addon.options_ui.chosen(settings)
    settings.sprite_source = "REFIT"
    report["refit_without_result"] = refusal()
    settings.sprite_source = "IMAGES"
    objects_before = len(bpy.data.objects)
    report["result"] = sorted(bpy.ops.spritefit.run())
    report["status"] = settings.status
    collection = next(c for c in bpy.data.collections if c.name.startswith("SpriteFit ("))
    report["collection"] = collection.name
    report["objects_added"] = len(bpy.data.objects) - objects_before
    report["quads"] = quads_of(collection)
    cameras = [o for o in collection.objects if o.type == "CAMERA"]
    report["camera"] = {"type": cameras[0].data.type, "ortho_scale": cameras[0].data.ortho_scale,
                        "location": list(cameras[0].location)} if cameras else None
    composite = bpy.data.images[collection.name]
    report["composite_size"] = list(composite.size)
    report["composite_packed"] = composite.packed_file is not None
    pixels = [0.0] * (composite.size[0] * composite.size[1] * 4)
    composite.pixels.foreach_get(pixels)
    report["composite"] = pixels
    report["scene"] = bpy.data.texts[collection.name + " scene.json"].as_string()

    # Refit: the lowest quad moved 4 px right and 2 px down, its location locked; the next one
    # moved 3 px left and turned by 0.3 rad, not locked.
    quads = sorted((o for o in collection.objects if o.type == "MESH"), key=lambda o: o.location.z)
    kept, turned = quads[0], quads[1]
    kept.location.x += 4 * 0.01
    kept.location.y -= 2 * 0.01
    kept.lock_location[0] = True
    turned.location.x -= 3 * 0.01
    turned.rotation_euler.z += 0.3
    report["refit_moved"] = {"kept": kept["spritefit_instance"], "turned": turned["spritefit_instance"]}
    settings.sprite_source = "REFIT"
    job = sys.modules["spritefit_blender"].Job(bpy.context)       # what a refit starts from
    with open(os.path.join(job.folder, "start.json")) as f:
        report["refit_start"] = json.load(f)
    report["refit_lock"] = job.options["lock"]
    job.close()
    report["refit_result"] = sorted(bpy.ops.spritefit.run())
    refit = newest_result()
    report["refit_collection"] = refit.name
    report["refit_scene"] = bpy.data.texts[refit["spritefit_scene"]].as_string()
    report["refitted_hidden"] = collection.hide_viewport and collection.hide_render
    settings.sprite_source = "IMAGES"

    # Keep-out: bright on the left half of the canvas (Blender's pixels run bottom row first).
    width, height = settings.target.size
    keep_out = bpy.data.images.new("keep out", width, height, alpha=False)
    keep_out.pixels.foreach_set([c for y in range(height) for x in range(width)
                                 for c in ((1.0,) * 3 if x < width // 2 else (0.0,) * 3) + (1.0,)])
    settings.keep_out = keep_out
    report["keep_out_result"] = sorted(bpy.ops.spritefit.run())
    report["keep_out_quads"] = quads_of(newest_result())
    settings.keep_out = bpy.data.images.new("wrong shape", 10, 30)
    report["keep_out_wrong_shape"] = refusal()
    settings.keep_out = None

    # Live: Blender runs no timers in -b mode, so the check calls the add-on's timer function
    # (live.tick) itself, as Blender would ten times a second.
    report["live"] = live_steps(addon, settings)

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
