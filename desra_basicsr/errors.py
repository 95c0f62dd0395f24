"""Exceptions for bad user input: the message always names the offending file or option and the problem.

The ``desra`` commands map them to exit codes: :class:`DesraSettingsError` (unusable arguments: a missing or empty
folder, an invalid number, weights that do not load, an output folder that cannot be used) exits with 2; any other
:class:`DesraInputError` (an input file that failed) exits with 1.
"""
from contextlib import contextmanager
from typing import Iterator


class DesraInputError(ValueError):
    """Raised for unusable user input (image, mask, table, config, checkpoint, option file)."""


class DesraSettingsError(DesraInputError):
    """Raised when a job's settings cannot be used at all; the job does no work."""


@contextmanager
def settings_phase() -> Iterator[None]:
    """Treat a :class:`DesraInputError` or ``ValueError`` raised inside as unusable settings (exit code 2).

    Jobs wrap what they do before the first item (reading options, tables, weights, listing folders) in it.

    Yields:
        None
    """
    try:
        yield
    except DesraSettingsError:
        raise
    except (DesraInputError, ValueError) as err:
        raise DesraSettingsError(str(err)) from err
