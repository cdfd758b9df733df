"""Turning a SpriteFit result into Blender data: one textured quad per placed sprite in a new
collection, an orthographic camera that frames them, and the composite as an image.

Canvas pixels map to Blender units by PIXEL (y flipped: the canvas's y points down), the first
sprite is the lowest (z grows by LAYER_GAP per sprite, painter's order), and the sprite's angle
(counter-clockwise on the canvas) is the object's rotation about z.
"""
from __future__ import annotations

import json
import os
from array import array

import bpy

PIXEL = 0.01           # Blender units per canvas pixel
LAYER_GAP = 1e-4       # z between consecutive sprites
SCENE_TEXT_SUFFIX = " scene.json"   # each result's scene.json is the text "<collection name> scene.json"
# Custom properties the result keeps, read by a refit: on the collection, its canvas size, scene
# text and order among results; on each quad, its instance and where the result put it (image px).
CANVAS, SCENE, SERIAL = "spritefit_canvas", "spritefit_scene", "spritefit_result"
INSTANCE, PLACEMENT = "spritefit_instance", "spritefit_placement"


def image_rgba_bytes(image) -> tuple[bytes, int, int]:
    """An image datablock's pixels as float RGBA, bottom row first (Blender's own layout)."""
    width, height = image.size
    pixels = array("f", bytes(4 * 4 * width * height))
    image.pixels.foreach_get(pixels)
    return pixels.tobytes(), width, height


def sprite_mesh(name: str, width: int, height: int):
    """A quad whose longer side spans -1..1, keeping the sprite's aspect ratio, with UVs."""
    longer = max(width, height)
    hx, hy = width / longer, height / longer
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata([(-hx, -hy, 0), (hx, -hy, 0), (hx, hy, 0), (-hx, hy, 0)], [], [(0, 1, 2, 3)])
    uv = mesh.uv_layers.new(name="UVMap")
    for loop, coords in zip(uv.data, ((0, 0), (1, 0), (1, 1), (0, 1))):
        loop.uv = coords
    mesh.update()
    return mesh


def sprite_material(name: str, image, color_mode: str):
    """Emission from the sprite texture and the object's colour (tint, opacity in its alpha)."""
    material = bpy.data.materials.new(name)
    material.use_nodes = True
    material.blend_method = "BLEND"
    nodes, links = material.node_tree.nodes, material.node_tree.links
    nodes.clear()
    texture = nodes.new("ShaderNodeTexImage")
    texture.image = image
    info = nodes.new("ShaderNodeObjectInfo")
    color = {"tint": info.outputs["Color"], "original": texture.outputs["Color"]}.get(color_mode)
    if color is None:
        mixer = nodes.new("ShaderNodeMixRGB")
        if color_mode == "multiply":
            mixer.blend_type = "MULTIPLY"
            mixer.inputs["Fac"].default_value = 1.0
        else:   # mix: the instance's own blend factor, kept as an object property
            factor = nodes.new("ShaderNodeAttribute")
            factor.attribute_type = "OBJECT"
            factor.attribute_name = "spritefit_mix"
            links.new(factor.outputs["Fac"], mixer.inputs["Fac"])
        links.new(info.outputs["Color"] if color_mode == "mix" else texture.outputs["Color"], mixer.inputs[1])
        links.new(texture.outputs["Color"] if color_mode == "mix" else info.outputs["Color"], mixer.inputs[2])
        color = mixer.outputs["Color"]
    emission = nodes.new("ShaderNodeEmission")
    links.new(color, emission.inputs["Color"])
    alpha = nodes.new("ShaderNodeMath")
    alpha.operation = "MULTIPLY"
    links.new(texture.outputs["Alpha"], alpha.inputs[0])
    links.new(info.outputs["Alpha"], alpha.inputs[1])
    transparent = nodes.new("ShaderNodeBsdfTransparent")
    mix = nodes.new("ShaderNodeMixShader")
    links.new(alpha.outputs[0], mix.inputs["Fac"])
    links.new(transparent.outputs[0], mix.inputs[1])
    links.new(emission.outputs[0], mix.inputs[2])
    output = nodes.new("ShaderNodeOutputMaterial")
    links.new(mix.outputs[0], output.inputs["Surface"])
    return material


def build_result(context, manifest: dict, sprite_images: dict, scene_json: str, instance_of):
    """The collection, camera and composite image for a result. sprite_images: sprite index ->
    image datablock of that sprite's bitmap; scene_json: the result's scene.json, kept as a text;
    instance_of: a layer record's name -> the scene instance it shows."""
    width, height = manifest["width"], manifest["height"]
    collection = bpy.data.collections.new(f"SpriteFit ({len(manifest['layers'])} sprites)")
    context.scene.collection.children.link(collection)
    earlier = [c.get(SERIAL, 0) for c in bpy.data.collections]
    text = bpy.data.texts.new(collection.name + SCENE_TEXT_SUFFIX)
    text.from_string(scene_json)
    collection[CANVAS], collection[SCENE], collection[SERIAL] = (width, height), text.name, max(earlier) + 1
    color_mode = manifest["color_mode"]
    meshes, materials = {}, {}
    for k, sprite in enumerate(manifest["sprites"]):
        image = sprite_images[k]
        meshes[k] = sprite_mesh(f"SpriteFit {sprite['name']}", *image.size)
        materials[k] = sprite_material(f"SpriteFit {sprite['name']}", image, color_mode)
        meshes[k].materials.append(materials[k])
    for depth, record in enumerate(manifest["layers"]):
        place = record["placement"]
        obj = bpy.data.objects.new(record["name"], meshes[record["sprite"]])
        obj.location = (place["x"] * PIXEL, (height - place["y"]) * PIXEL, depth * LAYER_GAP)
        obj.rotation_euler = (0.0, 0.0, place["angle"])
        obj.scale = (place["size"] * PIXEL,) * 3
        obj.color = (*place["color"], record["opacity"])
        obj["spritefit_mix"] = place["mix"]
        obj[INSTANCE] = instance_of(record["name"])
        obj[PLACEMENT] = (place["x"], place["y"], place["size"], place["angle"])
        collection.objects.link(obj)
    camera = _camera(width, height)
    collection.objects.link(camera)
    composite = bpy.data.images.load(os.path.join(manifest["folder"], manifest["composite"]))
    composite.name = collection.name
    composite.pack()
    return collection, camera, composite


def _camera(width: int, height: int):
    data = bpy.data.cameras.new("SpriteFit camera")
    data.type = "ORTHO"
    data.ortho_scale = max(width, height) * PIXEL
    camera = bpy.data.objects.new("SpriteFit camera", data)
    camera.location = (width * PIXEL / 2, height * PIXEL / 2, 10.0)
    return camera


# --- refitting a result as the user left it ------------------------------------------------------------

def last_result(scene):
    """The most recent SpriteFit result collection still in `scene` (None when there is none)."""
    results = [c for c in scene.collection.children_recursive if SERIAL in c and c.get(SCENE) in bpy.data.texts]
    return max(results, key=lambda c: c[SERIAL], default=None)


def is_locked(obj) -> bool:
    """A quad the user locked: its location is locked (the padlock beside Location X or Y)."""
    return bool(obj.lock_location[0] or obj.lock_location[1])


def read_refit(collection) -> tuple[dict, list]:
    """The result's scene (a dict) with the user's turns and resizes of its quads applied, and
    (instance, dx, dy, locked) for each quad: how far it was moved, in image pixels."""
    scene = json.loads(bpy.data.texts[collection[SCENE]].as_string())
    height = collection[CANVAS][1]
    scale = collection[CANVAS][0] / scene["canvas"]["width"]
    moves = []
    for obj in collection.objects:
        if INSTANCE not in obj or not 0 <= obj[INSTANCE] < len(scene["instances"]):
            continue
        x0, y0, size0, angle0 = obj[PLACEMENT]
        record = scene["instances"][obj[INSTANCE]]
        if abs(obj.rotation_euler.z - angle0) > 1e-6:
            record["angle"] += obj.rotation_euler.z - angle0
        if abs(obj.scale.x / PIXEL - size0) > 1e-6 * size0:
            record["size"] = obj.scale.x / PIXEL / scale
        moves.append((obj[INSTANCE], obj.location.x / PIXEL - x0, height - obj.location.y / PIXEL - y0,
                      is_locked(obj)))
    return scene, moves
