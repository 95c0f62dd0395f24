"""Package version (static: importing the package never needs a generated file)."""
__version__ = '0.1.0'
