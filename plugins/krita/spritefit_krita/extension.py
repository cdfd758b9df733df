"""The menu action Tools > Scripts > SpriteFit…, which shows the SpriteFit docker."""
from __future__ import annotations

from krita import Extension, Krita

from .docker import DOCKER_ID

ACTION_ID = "spritefit_open"


class SpriteFitExtension(Extension):
    def setup(self) -> None:
        pass

    def createActions(self, window) -> None:
        action = window.createAction(ACTION_ID, "SpriteFit…", "tools/scripts")
        action.triggered.connect(show_docker)


def show_docker() -> None:
    """Show and raise the SpriteFit docker (Krita names a docker after its factory id).
    Krita.dockers(), not QMainWindow.findChild: the latter never returned in Krita 5.1.5."""
    for dock in Krita.instance().dockers():
        if dock.objectName() == DOCKER_ID:
            dock.show()
            dock.raise_()
