"""User-facing errors.

Every mistake a user can make (a bad path, a bad config key, a corrupt image) raises a
subclass of :class:`LhamaError` whose message is one line saying what is wrong and how to fix
it. ``lhama.cli`` prints it in red and exits 2; ``lhama.serve`` maps it to an HTTP 4xx. Any
other exception is a bug and keeps its traceback.
"""


class LhamaError(Exception):
    """Base class of every error caused by user input."""


class ConfigError(LhamaError):
    """A config file or ``key=value`` override is invalid."""


class DataError(LhamaError):
    """Input data (a file, an image, a record) is missing, unreadable or malformed."""


class CheckpointError(LhamaError):
    """A model directory or checkpoint is missing, incomplete or of the wrong kind."""


class ModelError(LhamaError):
    """The model cannot do what was asked (e.g. an image given to a text-only model)."""
