"""Errors SpriteFit reports to its users.

Everything a user can cause (a bad file, a bad option) raises `SpriteFitError` with a message
that names the problem; the command line prints it on one line and exits with status 2.
"""


class SpriteFitError(Exception):
    """A problem with the user's input, explained in the message."""


class InputImageError(SpriteFitError):
    """An image file that cannot be used (missing, empty, truncated, not an image, too large)."""


class SpriteError(SpriteFitError):
    """A sprite set that cannot be used."""


class SceneFormatError(SpriteFitError):
    """A scene file that is not a valid SpriteFit scene."""


class NativeModuleError(SpriteFitError):
    """The compiled renderer was asked for by name but could not be loaded."""
