"""``desra_basicsr.settings``: declarative job settings checked when they are made."""
import argparse
import dataclasses
import math
import os.path as osp
from typing import Literal, Optional

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from desra_basicsr.errors import DesraSettingsError
from desra_basicsr.settings import Settings, default_of, setting, settings_from_args


@dataclasses.dataclass(frozen=True)
class Blur(Settings):
    """A small job's settings, one field of each kind."""
    input: str = setting(kind='path')
    out: Optional[str] = setting(None, kind='path')
    sigma: float = setting(1.0, lo=0, lo_open=True, hi=100)
    weight: float = setting(0.5, lo=0, hi=1, hi_open=True)
    count: int = setting(3, lo=0)
    border: Literal['reflect', 'constant'] = 'reflect'
    mode: Optional[Literal['fast', 'exact']] = None
    device: str = setting('cpu', kind='device')
    pad: float = setting(0.0, flag='--padding')
    keep: bool = False

    def check(self) -> None:
        if self.border == 'constant' and self.count == 0:
            raise DesraSettingsError('--border constant: needs --count >= 1')


def test_ranges_and_open_or_closed_bounds():
    assert Blur(input='a', sigma=100).sigma == 100  # hi closed
    assert Blur(input='a', weight=0).weight == 0  # lo closed
    for field, value, interval in (('sigma', 0, '(0, 100]'), ('sigma', 100.5, '(0, 100]'), ('weight', 1, '[0, 1)'),
                                   ('count', -1, '[0, inf)')):
        with pytest.raises(DesraSettingsError) as err:
            Blur(input='a', **{field: value})
        assert str(err.value) == f'--{field} {value}: must be a finite number in {interval}'


@pytest.mark.parametrize('value', [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_are_refused_even_without_bounds(value):
    with pytest.raises(DesraSettingsError, match='--padding .*: must be a finite number in \\(-inf, inf\\)'):
        Blur(input='a', pad=value)


@settings(max_examples=25, deadline=None)
@given(st.floats(allow_nan=True, allow_infinity=True))
def test_a_number_is_accepted_exactly_when_finite_and_in_range(value):
    inside = math.isfinite(value) and 0 < value <= 100
    if inside:
        assert Blur(input='a', sigma=value).sigma == value
    else:
        with pytest.raises(DesraSettingsError, match='^--sigma '):
            Blur(input='a', sigma=value)


def test_literal_choices_and_optional_literals():
    assert Blur(input='a', border='constant').border == 'constant'
    with pytest.raises(DesraSettingsError, match='^--border wrap: choose from reflect, constant$'):
        Blur(input='a', border='wrap')
    assert Blur(input='a').mode is None
    with pytest.raises(DesraSettingsError, match='^--mode slow: choose from fast, exact$'):
        Blur(input='a', mode='slow')


def test_paths_are_normalised_and_empty_paths_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    same = {Blur(input=p).input for p in ('a', './a', 'b/../a', str(tmp_path / 'a'))}
    assert same == {str(tmp_path / 'a')}
    assert Blur(input='~/x').input == osp.join(osp.expanduser('~'), 'x')
    assert Blur(input='a').out is None  # an optional path left out stays None
    for bad in ('', 'a\0b'):
        with pytest.raises(DesraSettingsError, match='^--input '):
            Blur(input=bad)
    assert Blur(input=tmp_path / 'p').input == str(tmp_path / 'p')  # os.PathLike


@pytest.mark.parametrize('device', ['auto', 'cpu', 'cuda', 'cuda:0', 'cuda:12'])
def test_device_strings_accepted(device):
    assert Blur(input='a', device=device).device == device


@pytest.mark.parametrize('device', ['mps', 'meta', 'gpu', 'cuda:', 'cuda:-1', 'CPU', 'cuda:0 ', 'Auto', ''])
def test_device_strings_refused(device):
    with pytest.raises(DesraSettingsError, match='use cpu, cuda or cuda:N'):
        Blur(input='a', device=device)


def test_cross_field_check_runs_after_the_field_checks():
    with pytest.raises(DesraSettingsError, match='needs --count'):
        Blur(input='a', border='constant', count=0)
    with pytest.raises(DesraSettingsError, match='--count -1'):  # the field's own check comes first
        Blur(input='a', border='constant', count=-1)


def test_settings_are_frozen_and_replace_checks_again():
    blur = Blur(input='a')
    with pytest.raises(dataclasses.FrozenInstanceError):
        blur.sigma = 2.0
    assert blur.replace(sigma=2.0).sigma == 2.0 and blur.sigma == 1.0
    with pytest.raises(DesraSettingsError, match='--sigma nan'):
        blur.replace(sigma=math.nan)


def test_default_of_and_settings_from_args(tmp_path):
    assert default_of(Blur, 'sigma') == 1.0 and default_of(Blur, 'device') == 'cpu'
    with pytest.raises(KeyError, match='Blur.input has no default'):
        default_of(Blur, 'input')
    parser = argparse.ArgumentParser()
    parser.add_argument('--input')
    parser.add_argument('--sigma', type=float)  # no parser default: the field's
    parser.add_argument('--count', type=int, default=default_of(Blur, 'count'))
    parser.add_argument('--unrelated')
    args = parser.parse_args(['--input', str(tmp_path), '--unrelated', 'x'])
    blur = settings_from_args(Blur, args)
    assert (blur.input, blur.sigma, blur.count, blur.weight) == (str(tmp_path), 1.0, 3, 0.5)
    assert settings_from_args(Blur, args, sigma=5.0, out='o').sigma == 5.0
    with pytest.raises(DesraSettingsError, match='--sigma inf'):
        settings_from_args(Blur, parser.parse_args(['--input', 'a', '--sigma', 'inf']))


@pytest.mark.parametrize('changes, message', [
    ({'sigma': 10**400}, '--sigma 1000'),  # too large for a float: refused, not an OverflowError
    ({'sigma': np.float32('nan')}, '--sigma nan: must be a finite number'),
    ({'count': np.int64(-5)}, '--count -5: must be a finite number in [0, inf)'),
    ({'count': True}, '--count True: give a whole number'),
    ({'count': 2.5}, '--count 2.5: give a whole number'),
    ({'sigma': '2'}, "--sigma '2': give a number"),
    ({'keep': 'yes'}, "--keep 'yes': give true or false"),
    ({'input': None}, '--input: required'),
    ({'sigma': None}, '--sigma None: give a number'),  # None only where the field is Optional
    ({'device': 'cpu\n'}, '--device cpu'),
    ({'device': 'cuda:\u0663'}, '--device cuda:'),
])
def test_the_python_api_is_held_to_the_command_line_types(changes, message):
    """What argparse's types guarantee on the command line, the settings check for Python callers (numpy numbers,
    bools, strings, None for a required field, a device with a newline or a non-ASCII digit)."""
    with pytest.raises(DesraSettingsError) as err:
        Blur(**dict({'input': 'a'}, **changes))
    assert str(err.value).startswith(message), err.value


def test_numpy_numbers_are_recorded_as_python_numbers():
    blur = Blur(input='a', sigma=np.float32(2.5), count=np.int64(4), pad=3)
    assert (blur.sigma, blur.count, blur.pad) == (2.5, 4, 3.0)
    assert (type(blur.sigma), type(blur.count), type(blur.pad)) == (float, int, float)
