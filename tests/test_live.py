"""Live sessions (spritefit.live): refits from the current scene as the target changes."""
import numpy as np

from spritefit.fitting import prepare_target
from spritefit.live import LiveSession, changed_region, instances_touching
from spritefit.render.layers import pixel_box
from spritefit.render import scene_atlas

TARGET = "core/spritefit/data/targets/chelsea.png"


def _touches(scene, region: np.ndarray) -> np.ndarray:
    """Which instances' pixel boxes overlap the region."""
    atlas = scene_atlas(scene)
    hits = []
    for i in range(len(scene)):
        box = pixel_box(atlas, scene.xy[i], float(scene.size[i]), float(scene.theta[i]), int(scene.sprite[i]),
                        scene.width, scene.height)
        hits.append(box is not None and region[box[1]:box[3], box[0]:box[2]].any())
    return np.array(hits)


def test_instances_touching_a_region_are_those_whose_pixel_box_meets_it(request):
    """The live session's test of which instances a change touches, against each rotated
    instance's pixel box: a corner of a rotated sprite counts, a square around its centre does not."""
    target = prepare_target(request.config.rootpath / TARGET, 96)
    scene = LiveSession(target, "shapes", {"n": 60, "iters": 5, "size": 96}).scene
    for rows, cols in ((slice(30, 40), slice(20, 60)), (slice(0, 3), slice(0, 96)), (slice(50, 64), slice(90, 96))):
        region = np.zeros((scene.height, scene.width), bool)
        region[rows, cols] = True
        touched = instances_touching(region, scene)
        assert np.array_equal(touched, _touches(scene, region)) and 0 < touched.sum() < len(scene)


def test_a_stroke_moves_only_the_sprites_it_touches(request):
    target = prepare_target(request.config.rootpath / TARGET, 96)
    live = LiveSession(target, "shapes", {"n": 60, "iters": 30, "size": 96})
    before = live.scene
    painted = target.copy()
    painted[30:40, 20:60] = (0.1, 0.8, 0.2)
    frame = live.update(painted)
    region = changed_region(target, painted)
    away = ~_touches(before, region)
    assert frame.update == 1 and not frame.restarted and frame.frozen >= away.sum() > 10
    shift = np.abs(frame.scene.xy - before.xy).max(1)
    assert shift[away].max() == 0 and np.array_equal(frame.scene.size[away], before.size[away])
    # the stroke is reproduced better than before the update
    error = lambda scene: np.abs(_render(scene)[30:40, 20:60] - painted[30:40, 20:60]).mean()
    assert error(frame.scene) < error(before)
    assert live.update(painted) is frame              # nothing changed: no work


def test_more_sprites_without_a_restart_and_a_new_colour_mode_restarts(request):
    target = prepare_target(request.config.rootpath / TARGET, 64)
    live = LiveSession(target, "shapes", {"n": 20, "iters": 10, "size": 64})
    first = live.scene
    grown = live.update(options={"n": 26})
    assert len(grown.scene) == 26 and not grown.restarted
    assert np.array_equal(grown.scene.sprite[:20], first.sprite)     # the 20 carried over, 6 added
    shrunk = live.update(options={"n": 15})
    assert len(shrunk.scene) == 15 and not shrunk.restarted
    again = live.update(options={"color_mode": "original"})
    assert again.restarted and again.scene.color_mode == "original" and len(again.scene) == 15


def _render(scene) -> np.ndarray:
    from spritefit.render import render_scene_array
    return render_scene_array(scene)
