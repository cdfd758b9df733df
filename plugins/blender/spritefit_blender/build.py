"""Turning a SpriteFit result into Blender data: one textured quad per placed sprite in a new
collection, an orthographic camera that frames them, and the composite as an image.

Canvas pixels map to Blender units by PIXEL (y flipped: the canvas's y points down), the first
sprite is the lowest (z grows by LAYER_GAP per sprite, painter's order), and the sprite's angle
(counter-clockwise on the canvas) is the object's rotation about z.
"""
from __future__ import annotations

import os
from array import array

import bpy

PIXEL = 0.01           # Blender units per canvas pixel
LAYER_GAP = 1e-4       # z between consecutive sprites
SCENE_TEXT = "SpriteFit scene.json"


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


def build_result(context, manifest: dict, sprite_images: dict):
    """The collection, camera and composite image for a result. sprite_images: sprite index ->
    image datablock of that sprite's bitmap."""
    width, height = manifest["width"], manifest["height"]
    collection = bpy.data.collections.new(f"SpriteFit ({len(manifest['layers'])} sprites)")
    context.scene.collection.children.link(collection)
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
