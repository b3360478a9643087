"""The errors snnconv raises for user mistakes and unsupported inputs.

Every message names the object (file, node, layer), what was found, what is allowed and
what to do next, on one line: the CLI prints it as ``error: ...`` and exits with code 2.
Anything else that escapes is a bug in snnconv.
"""

__all__ = [
    "SnnconvError",
    "BadModelError",
    "UnsupportedOpError",
    "BadGraphError",
    "BadDataError",
    "BadTargetError",
    "DoesNotFitError",
    "BadArtifactError",
    "MissingDependencyError",
    "BadPathError",
    "BadOptionError",
]


class SnnconvError(Exception):
    """Base class: a problem with the user's input, explained in one line."""


class BadModelError(SnnconvError):
    """The model file is unreadable, malformed or inconsistent."""


class UnsupportedOpError(SnnconvError):
    """The model uses an operator (or an attribute of one) that cannot become spiking neurons."""


class BadGraphError(SnnconvError):
    """An IR graph breaks an invariant (shapes, edges, order); raised by ``Graph.validate``."""


class BadDataError(SnnconvError):
    """Input, calibration or test data has the wrong shape, dtype or content."""


class BadTargetError(SnnconvError):
    """A target name that is not known, or a target description with a missing or invalid field."""


class DoesNotFitError(SnnconvError):
    """A layer or a whole network needs more than the target's cores or chips have."""


class BadArtifactError(SnnconvError):
    """A ``.snn`` file that is missing, damaged, tampered with, or of a newer format."""


class MissingDependencyError(SnnconvError):
    """An optional package that a feature needs is not installed; the message says what to install."""


class BadPathError(SnnconvError):
    """An output path that cannot be written, or that is the same file as an input or another output."""


class BadOptionError(SnnconvError, ValueError):
    """An option of the API or the command line with a value outside what it accepts (also a ``ValueError``)."""
