"""Exception types that carry a message a user can act on.

Every error raised for bad input (a config key, a missing file, a corrupt recording) is one of these,
so the command line can print the message alone instead of a traceback.
"""

from __future__ import annotations


class AvsslError(Exception):
    """Base class: the message names the file or key at fault and what to do about it."""


class ConfigError(AvsslError):
    """A config file is missing, or a key is unknown, mistyped or out of range."""


class DataError(AvsslError):
    """An input file or folder is missing, unreadable or malformed."""
