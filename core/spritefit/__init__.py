"""SpriteFit: reproduce an image with thousands of sprites fitted by a differentiable renderer."""
from importlib.metadata import PackageNotFoundError, version

from .errors import SpriteFitError
from .fitting import FitConfig, FitProgress, evaluate, fit
from .render import render, render_scene
from .scene import Scene
from .sprites import Atlas, Sprite, builtin_packs, load_sprites

try:
    __version__ = version("spritefit")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0"

__all__ = ["fit", "FitConfig", "FitProgress", "evaluate", "render", "render_scene", "Scene", "Atlas",
           "Sprite", "load_sprites", "builtin_packs", "SpriteFitError", "__version__"]
