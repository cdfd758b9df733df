"""SpriteFit for Krita: a docker that reproduces the image with copies of your layers, fitted by
the SpriteFit worker in its own process, and a menu action that opens it.

Outside Krita (tests, type checks) nothing is registered, and the Qt-free modules (document,
job, settings) import on their own."""


def _inside_krita() -> bool:
    try:
        import krita
    except ImportError:
        return False
    return hasattr(krita, "Krita")   # not a folder that happens to be named krita


def _register() -> None:
    from krita import DockWidgetFactory, DockWidgetFactoryBase, Krita

    from .docker import DOCKER_ID, SpriteFitDocker
    from .extension import SpriteFitExtension

    krita = Krita.instance()
    krita.addExtension(SpriteFitExtension(krita))
    krita.addDockWidgetFactory(DockWidgetFactory(DOCKER_ID, DockWidgetFactoryBase.DockRight, SpriteFitDocker))


if _inside_krita():
    _register()
