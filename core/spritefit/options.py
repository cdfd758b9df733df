"""Every option of a fit, declared once.

Each option is a field of one of the groups below (run, schedule, learning rates, heuristics,
constraints, temporal, losses), and carries its help text, type, choices or range, default and
how the editors show it (basic, advanced, or not at all). Everything else is built from here:
`FitConfig` (fitting/config.py) is made of these groups, the `fit`, `batch` and `video` commands'
options (cli.py), the worker's request checks and the option list of its `hello` event (which the
editors build their controls from: plugins/client/spritefit_options.json is its copy for hosts
that declare controls before any worker runs), and the README's table of options.

Adding an option: a field in its group here, and the code that uses it.

This module imports nothing heavy (no torch, numpy or PIL), so the command line's help and the
worker's hello come quickly.
"""
from __future__ import annotations

import numbers
import re
from dataclasses import MISSING, dataclass, field, fields

from .errors import SpriteFitError
from .limits import MAX_SPRITES

BASIC, ADVANCED, HIDDEN = "basic", "advanced", "hidden"   # how the editors show an option

# Choices that other modules check against too (their order is part of the native module's ABI
# for the colour modes).
COLOR_MODES = ("original", "tint", "mix", "multiply")
BACKENDS = ("auto", "native", "reference")
INIT_STRATEGIES = ("auto", "structure", "search", "random", "grid")   # and "scene", given a scene to start from
BLUR_SCHEDULES = ("linear", "cosine", "exponential", "none")
ALPHA_MODES = ("auto", "keep", "key", "luminance")
DEVICES = ("auto", "cpu", "cuda")                  # and cuda:N
# What each preset changes from the options' defaults (the balanced preset).
PRESETS: dict[str, dict] = {
    "fast": {"iters": 100, "respawn_every": 10},
    "balanced": {},
    "quality": {"iters": 800, "respawn_every": 25},
}
BACKGROUNDS = ("white", "black", "transparent")    # and #rrggbb
MIN_WORKING_SIZE = 8
MAX_WORKING_SIZE = 4096
DEFAULT_WORKING_SIZE = 512                         # the largest working size chosen by default

KINDS = {bool: "bool", int: "int", float: "float", str: "str"}


def option(default, help: str, *, choices: tuple = (), range: tuple | None = None, show: str = HIDDEN,
           kind: str | None = None, cli: bool = True, nullable: bool = False, flag: str | None = None):
    """A field of an option group. kind: int, float, bool, str, color (white, black, transparent
    or #rrggbb) or object (Python only: arrays, scenes); by default the default's type.
    nullable: None is a value of its own (a transparent background), not "unset".
    cli: whether the commands get a --flag for it (flag: its spelling, by default --the-name)."""
    kind = kind or KINDS[type(default)]
    return field(default=default, metadata={"help": help, "choices": tuple(choices), "range": range, "show": show,
                                            "kind": kind, "cli": cli and kind != "object", "nullable": nullable,
                                            "flag": flag})


@dataclass
class RunOptions:
    n: int = option(500, "number of placed sprites", range=(1, MAX_SPRITES), show=BASIC, flag="-n")
    preset: str = option("balanced", "fast (100 iterations), balanced (300) or quality (800): each changes a few "
                         "defaults", choices=tuple(PRESETS), show=BASIC)
    color_mode: str = option("tint", "how sprites are coloured: their own colours (original), one learned colour "
                             "each (tint), a blend of both (mix) or their colours times a learned one (multiply)",
                             choices=COLOR_MODES, show=BASIC)
    size: int | None = option(None, "working size: the target's longer side in pixels (default: its own, at most "
                              f"{DEFAULT_WORKING_SIZE})", range=(MIN_WORKING_SIZE, MAX_WORKING_SIZE), kind="int",
                              show=BASIC)
    sprite_alpha: str = option("auto", "images without transparency: auto (decided per image), keep (opaque), key "
                               "(the border colour is keyed out) or luminance (a mask: dark is paint)",
                               choices=ALPHA_MODES, show=BASIC)
    init: str = option("auto", "initial placement: auto (search for 12 sprites or fewer in tint and original "
                       "colours, else structure), structure (many small sprites on detail, few big ones on flat "
                       "areas), search (each sprite in turn where it lowers the error most, over every sprite, size, "
                       "angle and position: template matching by FFT), random or grid", choices=INIT_STRATEGIES,
                       show=ADVANCED)
    init_scene: object = option(None, "a Scene to start from, for init 'scene'", kind="object")
    background: tuple | None = option((1.0, 1.0, 1.0), "final background: white, black, transparent or #rrggbb",
                                      kind="color", nullable=True, show=ADVANCED)
    seed: int = option(0, "random seed: the same seed gives the same result on the same machine",
                       range=(0, 2**31 - 1), show=ADVANCED)
    device: str = option("auto", "where the fit runs: cpu, cuda (or cuda:N), or auto: cuda when torch sees a GPU",
                         choices=DEVICES, show=ADVANCED)
    backend: str = option("auto", "renderer: the native tile renderer (auto, native) or the pure-torch reference",
                          choices=BACKENDS)
    atlas_resolution: int = option(0, "texels of the sprites' largest mip level (0: from the largest drawn size)",
                                   range=(0, 4096))


@dataclass
class Schedule:
    iters: int = option(300, "optimisation iterations", range=(0, 100_000), show=BASIC)
    noisy_canvas: bool = option(True, "fresh uniform noise behind the sprites every iteration, until noise_until "
                                "(DiffBMP's noisy canvas: no sprite can hide in the background)")
    noise_until: float = option(0.25, "fraction of the run with the noisy canvas, then the final background",
                                range=(0.0, 1.0))
    blur_schedule: str = option("linear", "how the soft-rasterisation blur goes from blur_start to 0",
                                choices=BLUR_SCHEDULES)
    blur_start: float = option(2.0, "blur sigma at iteration 0, in texels of each instance's mip level",
                               range=(0.0, 16.0))
    # The sharp tail gains 0.6 dB at the quality preset (docs/quality.md); DiffBMP blurs to the end (1.0).
    blur_end_fraction: float = option(0.6, "fraction of the run at which the blur reaches 0", range=(0.0, 1.0))
    checkpoints: int = option(10, "clean evaluations (no noise, no blur) of which the best is kept",
                              range=(1, 1000))


@dataclass
class LearningRates:
    # Chosen on the tuning set at 100, 300 and 800 iterations (docs/versus.md).
    lr_position: float = option(0.15, "learning rate of positions, in typical sprite sizes per iteration",
                                range=(0.0, 100.0), show=ADVANCED)
    lr_log_size: float = option(0.08, "learning rate of the log sizes", range=(0.0, 100.0), show=ADVANCED)
    lr_angle: float = option(0.15, "learning rate of the angles (radians)", range=(0.0, 100.0), show=ADVANCED)
    lr_color: float = option(0.1, "learning rate of the colours (logits)", range=(0.0, 100.0), show=ADVANCED)
    lr_opacity: float = option(0.15, "learning rate of the opacities (logits)", range=(0.0, 100.0), show=ADVANCED)
    lr_mix: float = option(0.1, "learning rate of the mix weights between tint and sprite colour (logits)",
                           range=(0.0, 100.0))
    lr_final_fraction: float = option(0.3, "the learning rates decay (cosine) to this fraction of themselves",
                                      range=(0.0, 1.0))


@dataclass
class Heuristics:
    coverage: float | None = option(None, "sum of the sprites' box areas over the canvas's, which sets their "
                                    "typical size (default 2.5; 6 in original colours)", range=(0.01, 100.0),
                                    kind="float")
    start_opacity: float | None = option(None, "new instances' opacity (default 0.9; 0.5 in original colours)",
                                         range=(0.01, 1.0), kind="float")
    size_min: float = option(1 / 12, "smallest size, times the typical sprite size", range=(0.001, 100.0))
    size_max: float = option(6.0, "largest size, times the typical sprite size", range=(0.001, 100.0))
    size_range_weight: float = option(0.0, "soft penalty on sizes outside [size_min, size_max]", range=(0.0, 1e6))
    overlap_weight: float = option(0.0, "repulsion between nearby instances' centres", range=(0.0, 1e6))
    respawn_every: int = option(20, "iterations between respawns of invisible instances (0: never)",
                                range=(0, 100_000))
    respawn_until: float = option(0.75, "fraction of the run after which nothing is respawned", range=(0.0, 1.0))
    respawn_on_top: bool = option(True, "respawned instances go to the top (off: they keep their slot, so "
                                  "instance i stays instance i from frame to frame)")
    sprite_choice_every: int = option(10, "original colours: each instance's sprite chosen again by colour every "
                                      "this many iterations, while respawns run (0: never)", range=(0, 100_000))
    color_refit_every: int = option(0, "tint and multiply: least-squares colours every this many iterations once "
                                    "the noisy canvas is over (0: never)", range=(0, 100_000))


@dataclass
class Constraints:
    mask: object = option(None, "loss weights: an image (path) or (h, w) array in [0, 1]", kind="object")
    keep_in: object = option(None, "sprite centres stay inside this mask", kind="object")
    keep_out: object = option(None, "sprite centres stay outside this mask", kind="object")
    keep_footprint: bool = option(False, "keep-in, keep-out and regions hold for whole sprites, not only centres",
                                  show=ADVANCED)
    regions: tuple = option((), "fitting.constraints.Region: parts of the canvas with sprites of their own",
                            kind="object")


@dataclass
class Temporal:
    temporal_weight: float = option(0.0, "video: pull instances towards where the previous frame had them",
                                    range=(0.0, 1e6), cli=False)
    temporal_render_weight: float = option(0.0, "video: keep the render where the target stood still",
                                           range=(0.0, 1e6), cli=False)
    leave_canvas: bool = option(False, "video: instances may move off the canvas by their size (with the picture, "
                                "in a pan) instead of piling up on its border", cli=False)


@dataclass
class LossWeights:
    """Weights of the image loss terms; a term with weight 0 is not computed."""
    l2: float = option(1.0, "weight of the mean squared error", range=(0.0, 1e6))
    l1: float = option(0.0, "weight of the mean absolute error", range=(0.0, 1e6))
    # 0.1 gave up 0.26 dB of PSNR on the tuning set for at most 0.003 of SSIM (docs/versus.md).
    ssim: float = option(0.05, "weight of 1 - SSIM", range=(0.0, 1e6))
    ms_ssim: float = option(0.0, "weight of 1 - MS-SSIM", range=(0.0, 1e6))
    gradient: float = option(0.0, "weight of the image-gradient difference", range=(0.0, 1e6))
    perceptual: float = option(0.0, "weight of the perceptual (VGG) loss; needs a PerceptualLoss", range=(0.0, 1e6),
                               cli=False)
    image_weight: float = option(1.0, "weight of the whole image loss (0: a prompt alone guides the fit)",
                                 range=(0.0, 1e6))


# FitConfig's groups, as (attribute, class, title).
GROUPS = (("run", RunOptions, "run"), ("schedule", Schedule, "schedule"), ("rates", LearningRates, "learning rates"),
          ("heuristics", Heuristics, "heuristics"), ("constraints", Constraints, "spatial constraints"),
          ("temporal", Temporal, "video"), ("losses", LossWeights, "losses"))


@dataclass(frozen=True)
class Option:
    """One option, as the schema's readers see it."""
    name: str
    group: str
    kind: str
    default: object
    help: str
    choices: tuple = ()
    range: tuple | None = None
    show: str = HIDDEN
    cli: bool = True
    nullable: bool = False
    flag: str | None = None
    expects: str = "a string"    # a string without choices: what it looks like (its range: its length)

    @property
    def shown_default(self):
        """The default as a user writes it (a background as its name)."""
        if self.kind == "color":
            return color_name(self.default)
        return self.default

    def check(self, value, label: str | None = None):
        """`value` if it is allowed (a colour parsed), else a SpriteFitError that names the option
        (as `label`, by default "option 'name'") and its allowed values."""
        label = label or f"option {self.name!r}"
        if value is None and (self.nullable or self.default is None):
            return value
        if self.kind == "object":
            return value
        if self.kind == "color":
            return parse_color(value, label) if isinstance(value, str) else _color_tuple(value, label)
        if self.kind == "bool":
            if not isinstance(value, bool):
                raise SpriteFitError(f"{label} must be true or false, not {value!r}")
            return value
        if self.kind in ("int", "float"):
            return self._number(value, label)
        too_long = self.range is not None and isinstance(value, str) and len(value) > self.range[1]
        if not isinstance(value, str) or too_long or self.choices and value not in self.choices and not self._also(value):
            allowed = f"one of {', '.join(self.choices)}" if self.choices else self.expects
            raise SpriteFitError(f"{label} must be {allowed}, not {value!r}")
        return value

    def _number(self, value, label: str):
        integral = self.kind == "int"
        ok = isinstance(value, numbers.Integral if integral else numbers.Real)   # numpy's numbers too
        low, high = self.range or (None, None)
        if not ok or isinstance(value, bool) or value != value or (
                self.range is not None and not low <= value <= high):
            what = "an integer" if integral else "a number"
            span = f" in {low}..{high}" if self.range else ""
            raise SpriteFitError(f"{label} must be {what}{span}, not {value!r}")
        return int(value) if integral else float(value)

    def _also(self, value: str) -> bool:
        """Values beyond the listed choices (which are what the editors offer): devices cuda:N,
        and init "scene" (with a scene to start from: init_scene, a scene file)."""
        if self.name == "device":
            return re.fullmatch(r"cuda:\d+", value) is not None
        return self.name == "init" and value == "scene"

    def describe(self) -> dict:
        """What the worker's hello says of it (JSON)."""
        record = {"name": self.name, "group": self.group, "group_title": GROUP_TITLES[self.group], "type": self.kind,
                  "default": self.shown_default, "show": self.show, "help": self.help}
        if self.choices:
            record["choices"] = list(self.choices)
        if self.range and self.kind in ("int", "float"):
            record["range"] = list(self.range)
        by_preset = {preset: changes[self.name] for preset, changes in PRESETS.items() if self.name in changes}
        if by_preset:
            record["presets"] = by_preset
        return record


def _color_tuple(value, label: str):
    try:
        rgb = tuple(float(c) for c in value)
    except TypeError:
        rgb = ()
    if len(rgb) != 3 or not all(0.0 <= c <= 1.0 for c in rgb):
        raise SpriteFitError(f"{label} must be {', '.join(BACKGROUNDS)} or #rrggbb, not {value!r}")
    return rgb


NAMED_COLORS = {"white": (1.0, 1.0, 1.0), "black": (0.0, 0.0, 0.0), "transparent": None}


def parse_color(text: str, what: str = "background"):
    """white, black, transparent (None) or #rrggbb -> RGB in [0, 1]."""
    if text in NAMED_COLORS:
        return NAMED_COLORS[text]
    hex_digits = text.lstrip("#")
    if len(hex_digits) == 6:
        try:
            return tuple(int(hex_digits[i:i + 2], 16) / 255.0 for i in (0, 2, 4))
        except ValueError:
            pass
    raise SpriteFitError(f"{what} must be {', '.join(BACKGROUNDS)} or #rrggbb, not {text!r}")


def color_name(rgb) -> str:
    for name, value in NAMED_COLORS.items():
        if value == (None if rgb is None else tuple(rgb)):
            return name
    return "#" + "".join(f"{round(c * 255):02x}" for c in rgb)


def _options_of(group: str, cls) -> list[Option]:
    found = []
    for f in fields(cls):
        meta = f.metadata
        default = f.default if f.default is not MISSING else f.default_factory()
        found.append(Option(f.name, group, meta["kind"], default, meta["help"], meta["choices"], meta["range"],
                            meta["show"], meta["cli"], meta["nullable"], meta["flag"]))
    return found


GROUP_TITLES = {**{name: title for name, _, title in GROUPS}, "job": "job"}
# Every fit option by name (names are unique across the groups: a fit takes them flat).
OPTIONS: dict[str, Option] = {o.name: o for group, cls, _ in GROUPS for o in _options_of(group, cls)}
GROUP_OF: dict[str, str] = {name: o.group for name, o in OPTIONS.items()}

# Options of a worker job that are not options of the fit itself.
JOB_OPTIONS: dict[str, Option] = {o.name: o for o in (
    Option("cluster", "job", "str", "", "Ray address of a cluster to fit on, such as head.example:6379 "
           "(empty: on this machine)", range=(0, 300), show=ADVANCED,
           expects="a Ray address such as 'head.example:6379' (at most 300 characters)"),
    Option("lock", "job", "str", "none", "with a scene to start from: instances kept exactly as they are "
           "(all-edited, all, none, or ids and ranges such as 0,4,10-19)",
           expects="a string such as 'all-edited' or '0-9'"),
)}


def host_options() -> dict[str, Option]:
    """What a host (editor) may set through the worker: every option but Python objects."""
    return {name: o for name, o in {**OPTIONS, **JOB_OPTIONS}.items() if o.kind != "object"}


def check_options(values: dict) -> dict:
    """Values checked against the options a host may set: an unknown one, or one outside its type,
    choices or range, is a SpriteFitError that names it and what is allowed."""
    allowed = host_options()
    checked = {}
    for name, value in values.items():
        if name not in allowed:
            raise SpriteFitError(f"unknown option {name!r}")
        checked[name] = allowed[name].check(value)
    return checked


def described() -> list[dict]:
    """The options a host may set, for the worker's hello and plugins/client/spritefit_options.json."""
    return [o.describe() for o in host_options().values()]


def markdown_table() -> str:
    """The README's table of the `fit` options."""
    rows = ["| group | option | default | allowed | editors | what it does |", "|---|---|---|---|---|---|"]
    for o in OPTIONS.values():
        if not o.cli:
            continue
        allowed = (", ".join(o.choices) if o.choices else f"{o.range[0]}..{o.range[1]}" if o.range
                   else "on/off" if o.kind == "bool" else "white, black, transparent, #rrggbb" if o.kind == "color"
                   else "")
        rows.append(f"| {GROUP_TITLES[o.group]} | `{cli_flag(o)}` | {default_text(o) or '—'} | {allowed} | "
                    f"{o.show if o.show != HIDDEN else ''} | {o.help.replace('|', '/')} |")
    return "\n".join(rows)


def default_text(o: Option) -> str:
    """The default as the help and the README show it, with what the presets make of it
    ("300 (fast: 100, quality: 800)"); empty when the default is None (its help says why)."""
    if o.default is None:
        return ""
    value = o.shown_default
    text = "on" if value is True else "off" if value is False else _short(value)
    by_preset = ", ".join(f"{preset}: {_short(changes[o.name])}" for preset, changes in PRESETS.items()
                          if o.name in changes)
    return text + (f"; {by_preset}" if by_preset else "")


def _short(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def cli_flag(o: Option) -> str:
    return o.flag or "--" + o.name.replace("_", "-")


TABLE_START, TABLE_END = "<!-- options table: start -->", "<!-- options table: end -->"


def readme_with_table(readme: str) -> str:
    """The README with the table between its markers replaced by markdown_table()."""
    start, end = readme.index(TABLE_START) + len(TABLE_START), readme.index(TABLE_END)
    return readme[:start] + "\n" + markdown_table() + "\n" + readme[end:]


def client_schema_json() -> str:
    """plugins/client/spritefit_options.json: what the hello event lists, for the plugins."""
    import json
    return json.dumps({"format": "spritefit-options", "version": 1, "options": described()}, indent=1) + "\n"
