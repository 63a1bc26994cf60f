"""Errors a user can act on, each with the exit code the CLI returns for it.

Every error raised for bad input, configuration or models derives from
:class:`CmeriskError`; the CLI prints its message (never a traceback) and exits
with its ``exit_code``. The codes are documented in the README.
"""

from __future__ import annotations

#: Exit codes of the ``cmerisk`` command.
EXIT_OK = 0
EXIT_DATA = 1  # input data failed validation or cannot make what is asked
EXIT_USAGE = 2  # bad command-line arguments (Typer's own code)
EXIT_CONFIG = 3  # configuration, spec or model problem
EXIT_KEY = 4  # pseudonymisation key missing or unusable
EXIT_INTERNAL = 70  # a bug in cmerisk


class CmeriskError(Exception):
    """Base of the errors a user can act on."""

    exit_code: int = EXIT_DATA


class UsageError(CmeriskError):
    """A command-line value is malformed (e.g. a date not like 2025-05-15)."""

    exit_code = EXIT_USAGE


class DataError(CmeriskError):
    """Input data is missing, malformed or cannot make what is asked of it."""

    exit_code = EXIT_DATA


class ConfigError(CmeriskError, ValueError):
    """A configuration or spec file could not be read or is invalid."""

    exit_code = EXIT_CONFIG


class ModelError(CmeriskError):
    """A model cannot be found, loaded, or used with this data."""

    exit_code = EXIT_CONFIG


class PseudonymKeyError(CmeriskError):
    """The pseudonymisation key is missing or unusable."""

    exit_code = EXIT_KEY
