"""Exceptions for bad user input: the message always names the offending file and the problem."""


class DesraInputError(ValueError):
    """Raised for unusable user input (image, mask, table, config, checkpoint, option file)."""
