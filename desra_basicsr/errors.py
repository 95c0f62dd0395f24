"""Exceptions for bad user input: the message always names the offending file or option and the problem.

The ``desra`` commands map them to exit codes: :class:`DesraSettingsError` (unusable arguments: a missing or empty
folder, an invalid number, weights that do not load, an output folder that cannot be used) exits with 2; any other
:class:`DesraInputError` (an input file that failed) exits with 1.
"""


class DesraInputError(ValueError):
    """Raised for unusable user input (image, mask, table, config, checkpoint, option file)."""


class DesraSettingsError(DesraInputError):
    """Raised when a job's settings cannot be used at all; the job does no work."""
