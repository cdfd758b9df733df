"""The option schema (spritefit.options): one declaration of every fit option, from which the
commands' options, the worker's checks, its hello, the plugins' copy and the README are built."""
from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest

from spritefit.cli import build_parser
from spritefit.errors import SpriteFitError
from spritefit.fitting import FitConfig, make_config
from spritefit.options import (ADVANCED, BASIC, GROUPS, HIDDEN, JOB_OPTIONS, OPTIONS, check_options,
                               client_schema_json, described, readme_with_table)

ROOT = Path(__file__).resolve().parents[1]
CLIENT_SCHEMA = ROOT / "plugins" / "client" / "spritefit_options.json"


def test_the_readme_table_and_the_plugins_copy_are_generated_from_the_schema():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    stale = "stale: run python scripts/update_options.py"
    assert readme_with_table(readme) == readme, f"README's options table is {stale}"
    assert CLIENT_SCHEMA.read_text(encoding="utf-8") == client_schema_json(), f"{CLIENT_SCHEMA.name} is {stale}"
    for o in OPTIONS.values():
        if o.cli:
            assert f"`{'-n' if o.name == 'n' else '--' + o.name.replace('_', '-')}`" in readme


def test_every_option_is_declared_once_with_help_and_a_way_to_be_shown():
    declared = [f.name for _, cls, _ in GROUPS for f in fields(cls)]
    assert len(declared) == len(set(declared)) == len(OPTIONS)       # flat names are unique
    assert {f.name for f in fields(FitConfig)} == {group for group, _, _ in GROUPS} | {"given"}
    for o in [*OPTIONS.values(), *JOB_OPTIONS.values()]:
        assert o.help and o.show in (BASIC, ADVANCED, HIDDEN) and o.kind in ("int", "float", "bool", "str", "color",
                                                                             "object"), o
        assert o.check(o.default) is not None or o.default is None or o.nullable
        if o.choices:
            assert o.default in o.choices
        if o.range and o.kind in ("int", "float") and o.default is not None:
            assert o.range[0] <= o.default <= o.range[1], o
    assert make_config() == FitConfig()          # the schema's defaults are the balanced preset


def test_the_commands_share_one_definition_of_the_fit_options():
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices
    for command in ("fit", "batch", "video"):
        flags = {a.dest for a in commands[command]._actions}
        assert {o.name for o in OPTIONS.values() if o.cli} <= flags, command
    args = parser.parse_args(["fit", "t.png", "--sprites", "shapes", "--out", "o", "--lr-position", "0.2",
                              "--no-noisy-canvas", "--color-mode", "original"])
    from spritefit.cli import _given_options
    assert _given_options(args) == {"lr_position": 0.2, "noisy_canvas": False, "color_mode": "original"}
    video = parser.parse_args(["video", "clip.gif", "--sprites", "shapes", "--out", "o", "--iters", "40"])
    assert _given_options(video) == {"iters": 40}


@pytest.mark.parametrize("values, message", [
    ({"wobble": 1}, "unknown option 'wobble'"),
    ({"n": 0}, "option 'n' must be an integer in 1..100000, not 0"),
    ({"iters": 2.5}, "option 'iters' must be an integer in 0..100000, not 2.5"),
    ({"lr_position": "fast"}, "option 'lr_position' must be a number in 0.0..100.0"),
    ({"color_mode": "sepia"}, "option 'color_mode' must be one of original, tint, mix, multiply, not 'sepia'"),
    ({"noisy_canvas": 1}, "option 'noisy_canvas' must be true or false, not 1"),
    ({"background": "plaid"}, "option 'background' must be white, black, transparent or #rrggbb, not 'plaid'"),
    ({"device": "tpu"}, "option 'device' must be one of auto, cpu, cuda, not 'tpu'"),
    ({"mask": [[1]]}, "unknown option 'mask'"),       # arrays travel as files, not options
    ({"cluster": "x" * 301}, "option 'cluster' must be a Ray address"),
])
def test_a_bad_option_names_itself_and_what_is_allowed(values, message):
    with pytest.raises(SpriteFitError) as caught:
        check_options(values)
    assert message in str(caught.value)


def test_checked_values_come_out_in_the_fits_terms():
    assert check_options({"background": "#ff0000", "device": "cuda:1", "lr_color": 1, "size": 256}) == {
        "background": (1.0, 0.0, 0.0), "device": "cuda:1", "lr_color": 1.0, "size": 256}
    config = make_config("fast", lr_color=0.3, keep_footprint=True)
    assert (config.rates.lr_color, config.constraints.keep_footprint, config.schedule.iters) == (0.3, True, 100)
    assert config.option("lr_color") == 0.3 and config.with_options(n=7).run.n == 7


def test_the_hosts_copy_lists_every_option_a_host_may_set():
    schema = json.loads(CLIENT_SCHEMA.read_text(encoding="utf-8"))
    assert schema["options"] == described()
    names = {o["name"] for o in schema["options"]}
    assert {"n", "iters", "size", "preset", "color_mode", "sprite_alpha", "cluster", "lr_position"} <= names
    assert not names & {"mask", "keep_in", "keep_out", "regions", "init_scene"}
    basic = [o["name"] for o in schema["options"] if o["show"] == BASIC]
    assert basic[:3] == ["n", "preset", "color_mode"]
    assert "scene" not in next(o for o in schema["options"] if o["name"] == "init")["choices"]
