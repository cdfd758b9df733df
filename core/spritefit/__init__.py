"""SpriteFit: reproduce an image with thousands of sprites fitted by a differentiable renderer.

The names below are imported when first used (PEP 562), so that what needs no torch (the
command line's help, the option schema, the worker's start) does not wait for it."""
from importlib import import_module

from .errors import SpriteFitError

# Public name -> the module that defines it.
_LAZY = {"fit": ".fitting", "FitConfig": ".fitting", "FitProgress": ".fitting", "evaluate": ".fitting",
         "render": ".render", "render_scene": ".render", "Scene": ".scene", "Atlas": ".sprites",
         "Sprite": ".sprites", "load_sprites": ".sprites", "builtin_packs": ".sprites"}

__all__ = [*_LAZY, "SpriteFitError", "__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name], __name__), name)
    elif name == "__version__":   # looked up on first use: finding the installed metadata takes 20 ms
        value = _installed_version()
    else:
        raise AttributeError(f"module 'spritefit' has no attribute {name!r}")
    globals()[name] = value
    return value


def _installed_version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("spritefit")
    except PackageNotFoundError:  # running from a source tree without installing
        return "0.0.0"


def __dir__():
    return sorted(set(globals()) | set(_LAZY) | {"__version__"})
