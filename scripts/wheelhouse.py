"""Wheels for an offline machine whose Python already holds torch (``make wheelhouse``).

GPU machines often reach no package index and come with their own CUDA build of torch (and numpy, OpenCV, ...).
Run this on a machine with network after ``make setup``: it takes the pinned stack as ``make setup`` resolved it
(this interpreter's installed distributions, reached from ``requirements.txt``), leaves out torch, torchvision and
every distribution the target already has, and puts the rest into one folder of wheels (binary wheels for the
target's Python; an sdist such as basicsr 1.4.2 is built into a wheel here). On the target::

    DESRA_WHEELHOUSE=wheelhouse make gpu-check     # or make test: setup.sh installs offline from the folder

Usage::

    make wheelhouse WHEELHOUSE_ARGS="--have target_freeze.txt --python-version 3.12"
    .venv/bin/python scripts/wheelhouse.py --out wheelhouse --have target_freeze.txt --python-version 3.12

``--have`` reads the target's ``pip freeze`` or ``pip list`` output, or bare names, one per line. A distribution
whose job another one does counts as had (``opencv-python-headless`` for ``opencv-python``, ``tensorboard`` for
``tb-nightly``).
"""
import argparse
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from typing import Dict, Iterable, List, Optional, Set

from packaging.markers import default_environment
from packaging.requirements import Requirement
from tqdm import tqdm

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
ALWAYS_HAD = ('torch', 'torchvision')  # the target's own build (CUDA) is the point of installing offline
EQUIVALENT = {
    'opencv-python': ('opencv-python-headless', ),
    'opencv-python-headless': ('opencv-python', ),
    'tb-nightly': ('tensorboard', ),
}
MANYLINUX = ('manylinux_2_28_x86_64', 'manylinux_2_27_x86_64', 'manylinux_2_17_x86_64', 'manylinux2014_x86_64',
             'manylinux1_x86_64')


def canonical(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r'[-_.]+', '-', name).lower()


def read_have(lines: Iterable[str]) -> Set[str]:
    """Distribution names in ``pip freeze`` / ``pip list`` output or a list of bare names."""
    names = set()
    for line in lines:
        line = line.split('#')[0].strip()
        if not line or line.startswith(('-', 'Package')):
            continue
        names.add(canonical(re.split(r'[=<>!~@ ;\[]', line, maxsplit=1)[0]))
    return names


def read_requirements(path: str) -> List[Requirement]:
    """The requirements of a requirements file (comments and blank lines skipped)."""
    with open(path, 'r') as f:
        return [Requirement(line) for line in (line.split('#')[0].strip() for line in f) if line]


def installed_distribution(name: str) -> Optional[metadata.Distribution]:
    """``name``, or a distribution that does its job, as installed in this interpreter; None when absent."""
    for candidate in (name, *EQUIVALENT.get(canonical(name), ())):
        try:
            return metadata.distribution(candidate)
        except metadata.PackageNotFoundError:
            pass
    return None


def check_installed(path: str) -> int:
    """After an offline set-up: name the pins this interpreter does not meet; fail when a requirement is absent.

    Args:
        path (str): The requirements file.

    Returns:
        int: 0 when every requirement is installed (in some version), else 1.
    """
    missing, differ = [], []
    for requirement in read_requirements(path):
        dist = installed_distribution(requirement.name)
        if dist is None:
            missing.append(requirement.name)
        elif dist.version not in requirement.specifier:
            differ.append(f'{dist.metadata["Name"]} {dist.version} (pinned {requirement.name}{requirement.specifier})')
    if differ:
        print("setup: offline, with this machine's " + ', '.join(differ))
    if missing:
        print(f'setup: {", ".join(missing)}: neither installed here nor in the wheelhouse. Make the wheelhouse on a '
              'machine with network with `make wheelhouse WHEELHOUSE_ARGS="--have FILE"`, FILE listing what this '
              'machine has (its `pip freeze`)', file=sys.stderr)
        return 1
    return 0


def closure(roots: Iterable[str], have: Set[str], python_version: str) -> Dict[str, str]:
    """Installed distributions reached from ``roots`` through their requirements, minus those the target has.

    Requirements of a distribution the target has are not followed: that distribution is the target's. Where this
    interpreter has an equivalent instead of a required distribution (OpenCV headless), the equivalent is taken.
    Markers are evaluated for the target's Python version; extras are not followed.

    Args:
        roots (Iterable[str]): Distribution names to start from.
        have (set[str]): Canonical names the target already has.
        python_version (str): The target's Python, e.g. ``'3.12'``.

    Returns:
        dict: Canonical name -> installed version, for the distributions to put into the wheelhouse.

    Raises:
        RuntimeError: A needed distribution is not installed in this interpreter (run ``make setup`` first).
    """
    environment = dict(default_environment(), python_version=python_version, python_full_version=python_version)
    had = set(have) | set(ALWAYS_HAD)
    had |= {name for name, equivalents in EQUIVALENT.items() if had & set(equivalents)}
    needed: Dict[str, str] = {}
    todo = [canonical(name) for name in roots]
    while todo:
        name = todo.pop()
        if name in had or name in needed:
            continue
        dist = installed_distribution(name)
        if dist is None:
            raise RuntimeError(f'{name} is needed but not installed in {sys.prefix}: run `make setup` first')
        needed[canonical(dist.metadata['Name'])] = dist.version
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate(dict(environment, extra='')):
                todo.append(canonical(requirement.name))
    return needed


def fetch_wheels(needed: Dict[str, str], out: str, python_version: str, platforms: Iterable[str]) -> List[str]:
    """Download (or, for sdist-only releases, build) one wheel per distribution into the folder ``out``.

    Returns:
        list[str]: The wheel files in ``out``.

    Raises:
        RuntimeError: pip failed, or an sdist built into a wheel that is not pure Python (it would only run here).
    """
    pip = [sys.executable, '-m', 'pip', '--disable-pip-version-check', '-q']
    target = ['--python-version', python_version, '--implementation', 'cp']
    for platform in platforms:
        target += ['--platform', platform]
    for name, version in tqdm(sorted(needed.items()), desc='wheelhouse', unit='wheel'):
        spec = f'{name}=={version}'
        got = subprocess.run(pip + ['download', '--no-deps', '--only-binary=:all:', *target, '-d', out, spec],
                             capture_output=True, text=True)
        if got.returncode == 0:
            continue
        before = set(os.listdir(out))  # no binary wheel: build the sdist here (this interpreter has its build needs)
        built = subprocess.run(pip + ['wheel', '--no-deps', '--no-build-isolation', '-w', out, spec],
                               capture_output=True, text=True)
        if built.returncode != 0:
            raise RuntimeError(f'no wheel for {spec}:\n{got.stderr[-1500:]}\n{built.stderr[-1500:]}')
        impure = [f for f in set(os.listdir(out)) - before if not f.endswith('-none-any.whl')]
        if impure:
            raise RuntimeError(f'{spec} has no wheel for Python {python_version}, and building it here gave '
                               f'{impure[0]}, which runs on this machine only')
    return sorted(f for f in os.listdir(out) if f.endswith('.whl'))


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--out', default='wheelhouse', help='folder of wheels (default wheelhouse)')
    parser.add_argument('--have', help="the target's pip freeze / pip list output, or bare names, one per line")
    parser.add_argument('--python-version', default=f'{sys.version_info.major}.{sys.version_info.minor}',
                        help="the target's Python (default: this one's)")
    parser.add_argument('--platform', action='append', help=f'wheel platform tags (default: {", ".join(MANYLINUX)})')
    parser.add_argument('--check', action='store_true',
                        help='instead: check this interpreter against requirements.txt (run by setup.sh offline)')
    args = parser.parse_args(argv)
    requirements_file = osp.join(REPO, 'requirements.txt')
    if args.check:
        return check_installed(requirements_file)
    have: Set[str] = set()
    if args.have:
        try:
            with open(args.have, 'r') as f:
                have = read_have(f)
        except OSError as error:
            print(f'error: cannot read --have file {args.have}: {error.strerror}', file=sys.stderr)
            return 2
    out = osp.abspath(args.out)
    os.makedirs(osp.dirname(out), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix='.wheelhouse-', dir=osp.dirname(out))  # renamed to ``out`` once complete
    try:
        roots = [requirement.name for requirement in read_requirements(requirements_file)]
        needed = closure(roots, have, args.python_version)
        wheels = fetch_wheels(needed, tmp, args.python_version, args.platform or MANYLINUX)
    except RuntimeError as error:
        shutil.rmtree(tmp)
        print(f'error: {error}', file=sys.stderr)
        return 1
    if osp.isdir(out):  # a fresh set: stale versions beside new ones would stop the offline install
        shutil.rmtree(out)
    os.replace(tmp, out)
    size = sum(osp.getsize(osp.join(out, f)) for f in wheels)
    print('\n'.join(wheels))
    print(f'wheelhouse: {len(wheels)} wheels, {size / 2**20:.1f} MiB in {args.out} (Python {args.python_version}; '
          f'torch, torchvision and {len(have)} distributions named by --have left to the target)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
