"""SpriteFit for Krita: a docker that reproduces the image with copies of your layers, fitted by
the SpriteFit worker in its own process, and a menu action that opens it."""
from krita import DockWidgetFactory, DockWidgetFactoryBase, Krita

from .docker import DOCKER_ID, SpriteFitDocker
from .extension import SpriteFitExtension

_krita = Krita.instance()
_krita.addExtension(SpriteFitExtension(_krita))
_krita.addDockWidgetFactory(DockWidgetFactory(DOCKER_ID, DockWidgetFactoryBase.DockRight, SpriteFitDocker))
