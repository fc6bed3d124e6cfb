"""Errors that carry a one-line message meant for the user.

Every command-line entry point catches :class:`YolactError` and prints its message on one line with
exit code 2, so bad input never ends in a traceback.
"""


class YolactError(Exception):
    """A problem with the user's input (file, preset, option) that we can explain in one line."""

    exit_code = 2


class ConfigError(YolactError):
    """Unknown preset or an inconsistent configuration."""


class CheckpointError(YolactError):
    """Missing, corrupt or mismatching checkpoint file."""


class InputError(YolactError):
    """Missing or unreadable image, video or data file."""
