"""Declarative job settings: frozen dataclasses validated when they are made, and one way to build them from argv.

Every job of :mod:`desra_basicsr.jobs` takes one settings dataclass. Its fields declare their own contract with
:func:`setting` (the range of a number, a path that is normalised, a device) or a ``Literal`` type (one of a few
values), and the class derives from :class:`Settings`, whose ``__post_init__`` checks every field. So a bad value is
refused with one :class:`~desra_basicsr.errors.DesraSettingsError` naming the option, whether it came from the
command line or from Python, before any work is done::

    @dataclass(frozen=True)
    class BlurSettings(Settings):
        input: str = setting(kind='path')
        out: str = setting(kind='path')
        sigma: float = setting(1.0, lo=0, lo_open=True, hi=100)
        border: Literal['reflect', 'constant'] = 'reflect'

    BlurSettings(input='photos', out='blurred', sigma=float('nan'))
    # DesraSettingsError: --sigma nan: must be a finite number in (0, 100]

The ``desra`` commands read their parser defaults with :func:`default_of` and build the settings with
:func:`settings_from_args`. This module imports the standard library only (``desra --help`` stays light).
"""
import dataclasses
import math
import numbers
import os
import os.path as osp
import re
import typing
from typing import Any, Dict, Mapping, Optional, Tuple, Type, TypeVar

from desra_basicsr.errors import DesraSettingsError

S = TypeVar('S', bound='Settings')

#: Field kinds of :func:`setting`.
KINDS = ('number', 'path', 'device')
#: What ``kind='device'`` accepts: ``auto`` (CUDA when available), ``cpu``, ``cuda``, ``cuda:N``. Whether the device
#: exists is checked by the job (:func:`desra_basicsr.devices.resolve_device`), which imports torch.
DEVICE_PATTERN = re.compile(r'auto|cpu|cuda(:[0-9]+)?')


def setting(default: Any = dataclasses.MISSING,
            *,
            lo: Optional[float] = None,
            hi: Optional[float] = None,
            lo_open: bool = False,
            hi_open: bool = False,
            kind: str = 'number',
            flag: Optional[str] = None) -> Any:
    """A dataclass field with a checked contract (see the module docstring).

    Args:
        default: The default value (none: the field is required).
        lo (float | None): Smallest allowed number (``kind='number'``); None: no lower bound.
        hi (float | None): Largest allowed number; None: no upper bound.
        lo_open (bool): ``lo`` itself is not allowed.
        hi_open (bool): ``hi`` itself is not allowed.
        kind (str): ``'number'`` (finite, within the bounds), ``'path'`` (a non-empty path, made absolute with
            ``~`` expanded, so that a folder typed as ``./a``, ``a`` or ``$PWD/a`` is the same setting) or
            ``'device'`` (``auto``, ``cpu``, ``cuda`` or ``cuda:N``).
        flag (str | None): The command-line option named in messages (default: ``--`` + the field name with
            dashes).

    Returns:
        dataclasses.Field: The field.
    """
    if kind not in KINDS:
        raise ValueError(f'kind {kind!r}: choose from {", ".join(KINDS)}')
    metadata = {'lo': lo, 'hi': hi, 'lo_open': lo_open, 'hi_open': hi_open, 'kind': kind, 'flag': flag}
    return dataclasses.field(default=default, metadata={'desra': metadata})


def flag_of(f: dataclasses.Field) -> str:
    """The command-line option of a settings field, as messages name it.

    Args:
        f (dataclasses.Field): The field.

    Returns:
        str: E.g. ``--min-area`` for ``min_area``.
    """
    return f.metadata.get('desra', {}).get('flag') or '--' + f.name.replace('_', '-')


def _interval(spec: Mapping[str, Any]) -> str:
    lo = '-inf' if spec['lo'] is None else f'{spec["lo"]:g}'
    hi = 'inf' if spec['hi'] is None else f'{spec["hi"]:g}'
    left = '(' if spec['lo'] is None or spec['lo_open'] else '['
    right = ')' if spec['hi'] is None or spec['hi_open'] else ']'
    return f'{left}{lo}, {hi}{right}'


def check_number(name: str, value: Any, spec: Mapping[str, Any]) -> None:
    """Refuse a number that is not finite or lies outside the interval of ``spec``.

    Args:
        name (str): The option, for the message.
        value: The number (bools and non-numbers are left to the type's own check).
        spec (dict): ``lo``, ``hi``, ``lo_open``, ``hi_open`` as for :func:`setting`.

    Raises:
        DesraSettingsError: If the number is NaN, infinite or out of range.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return
    lo, hi = spec.get('lo'), spec.get('hi')
    finite = isinstance(value, numbers.Integral) or math.isfinite(value)  # an int too large for a float is finite
    inside = (finite and (lo is None or (value > lo if spec.get('lo_open') else value >= lo))
              and (hi is None or (value < hi if spec.get('hi_open') else value <= hi)))
    if not inside:
        raise DesraSettingsError(f'{name} {value}: must be a finite number in {_interval(spec)}')


def normalise_path(path: str) -> str:
    """The one normal form of a path typed by a user: ``~`` expanded, absolute, without ``.`` / ``..`` parts.

    Args:
        path (str): The path as typed.

    Returns:
        str: The normalised path (symbolic links are kept, so messages show the folders the user knows).
    """
    return osp.abspath(osp.expanduser(path))


def _literal_values(annotation: Any) -> Optional[Tuple[Any, ...]]:
    """The allowed values of ``Literal[...]`` or ``Optional[Literal[...]]``, else None."""
    if typing.get_origin(annotation) is typing.Literal:
        return typing.get_args(annotation)
    if typing.get_origin(annotation) is typing.Union:
        for arg in typing.get_args(annotation):
            values = _literal_values(arg)
            if values is not None:
                return values
    return None


def optional_type(annotation: Any) -> Tuple[Any, bool]:
    """A field's annotation without ``Optional``, and whether it admits None.

    Args:
        annotation: The field's type (``int``, ``Optional[float]``, ...).

    Returns:
        tuple: ``(type, optional)``: ``Optional[X]`` gives ``(X, True)``, any other type ``(type, False)``.
    """
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is typing.Union and type(None) in args:
        rest = [arg for arg in args if arg is not type(None)]
        return (rest[0] if len(rest) == 1 else annotation), True
    return annotation, False


def _check_type(name: str, value: Any, annotation: Any) -> Any:
    """Refuse a value of another type than a ``bool``, ``int`` or ``float`` field's; numbers as Python numbers.

    What the command line parses has these types already; this holds the Python API to the same rule (a bool is
    not a number, a numpy number becomes a Python one, so that ``summary.json`` can record it).
    """
    if annotation is bool and not isinstance(value, bool):
        raise DesraSettingsError(f'{name} {value!r}: give true or false')
    if annotation in (int, float) and (isinstance(value, bool) or not isinstance(
            value, numbers.Integral if annotation is int else numbers.Real)):
        raise DesraSettingsError(f'{name} {value!r}: give a {"whole " if annotation is int else ""}number')
    if annotation is int:
        return int(value)
    if annotation is float:
        try:
            return float(value)
        except OverflowError:
            raise DesraSettingsError(f'{name} {value}: must be a finite number') from None
    return value


def _check_path(name: str, value: Any) -> str:
    if not isinstance(value, (str, os.PathLike)) or not str(value):
        raise DesraSettingsError(f'{name} {value!r}: give a non-empty path')
    if '\0' in str(value):
        raise DesraSettingsError(f'{name} {value!r}: a path may not contain a NUL character')
    return normalise_path(str(value))


class Settings:
    """Base of the jobs' settings dataclasses: checks and normalises every field when the object is made.

    Subclasses are ``@dataclass(frozen=True)``; a subclass that needs checks across fields overrides
    :meth:`check` (called after the per-field checks, with paths already normalised).
    """

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            name = flag_of(f)
            annotation, optional = optional_type(hints.get(f.name))
            if value is None:
                required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
                if required and not optional:
                    raise DesraSettingsError(f'{name}: required')
                if optional or f.default is None:
                    continue  # otherwise None is checked as any other value of the field's type, and refused
            object.__setattr__(self, f.name, _check_type(name, value, annotation))  # checked below as given
            allowed = _literal_values(hints.get(f.name))
            if allowed is not None and value not in allowed:
                raise DesraSettingsError(f'{name} {value}: choose from {", ".join(map(str, allowed))}')
            spec = f.metadata.get('desra')
            if spec is None:
                continue
            if spec['kind'] == 'number':
                check_number(name, value, spec)
            elif spec['kind'] == 'path':
                object.__setattr__(self, f.name, _check_path(name, value))
            elif not DEVICE_PATTERN.fullmatch(str(value)):
                raise DesraSettingsError(f'{name} {value}: use cpu, cuda or cuda:N (or auto)')
        self.check()

    def check(self) -> None:
        """Checks across fields (override in a subclass); raise :class:`DesraSettingsError` to refuse."""

    def replace(self: S, **changes: Any) -> S:
        """A copy with some fields changed, checked again.

        Args:
            **changes: New field values.

        Returns:
            Settings: The new settings.
        """
        return dataclasses.replace(self, **changes)


def default_of(cls: Type[Settings], name: str) -> Any:
    """The default of a settings field, for a parser's ``default=`` (one source for both).

    Args:
        cls (type): The settings class.
        name (str): The field name.

    Returns:
        The default value.

    Raises:
        KeyError: If the field has no default.
    """
    for f in dataclasses.fields(cls):
        if f.name == name:
            if f.default is not dataclasses.MISSING:
                return f.default
            if f.default_factory is not dataclasses.MISSING:
                return f.default_factory()
            break
    raise KeyError(f'{cls.__name__}.{name} has no default')


def settings_from_args(cls: Type[S], args: Any, **overrides: Any) -> S:
    """Build a job's settings from parsed arguments: each field takes the argument of the same name.

    Arguments that are absent (or None for a field with a default) leave the field's default, so a parser needs no
    copy of the defaults.

    Args:
        cls (type): The settings class.
        args (argparse.Namespace): Parsed arguments.
        **overrides: Field values that do not come from an argument of the same name.

    Returns:
        Settings: The checked settings.

    Raises:
        DesraSettingsError: If a value is refused (see :class:`Settings`).
    """
    values: Dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name in overrides or not hasattr(args, f.name):
            continue
        value = getattr(args, f.name)
        has_default = f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
        if value is None and has_default:
            continue
        values[f.name] = value
    values.update(overrides)
    return cls(**values)
