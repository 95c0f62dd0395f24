"""Input folders and output paths of the ``desra`` commands: pairing files by stem and checking ``--out`` early.

This module sits below both :mod:`desra_basicsr.jobs` and :mod:`desra_basicsr.evaluation`: it imports neither.
Every check here runs before any work and creates nothing, so a refused command leaves no half-made folder.

* :func:`pair_folders` pairs the images of several input folders by file stem and reports, per stem, the folders
  (by role) it is missing from; :func:`pair_inputs` turns those into the per-item failure messages of a folder job.
* :func:`check_out_dir` and :func:`check_out_file` refuse an output that is (inside) an input folder, that is a file
  where a folder is wanted, that cannot be written, or whose name the file system cannot hold (an empty path, a
  name longer than ``NAME_MAX`` bytes, a path longer than ``PATH_MAX`` bytes).
"""
import os
import os.path as osp
import tempfile
from typing import Dict, List, Mapping, Tuple

from desra_basicsr.errors import DesraSettingsError, settings_phase
from desra_basicsr.settings import normalise_path

#: Name and path limits (bytes) used when the file system cannot be asked (POSIX defaults of Linux).
NAME_MAX, PATH_MAX = 255, 4096


def require_folder(folder: str, role: str) -> None:
    """Check an input folder exists.

    Args:
        folder (str): The folder.
        role (str): Its option name (``mse``, ``gan``, ...), for the message.

    Raises:
        DesraSettingsError: If it is not a directory.
    """
    if not folder or not osp.isdir(folder):
        raise DesraSettingsError(f'{folder}: --{role} is not a folder')


def pair_folders(folders: Mapping[str, str]) -> Tuple[List[Tuple[str, ...]], Dict[str, Tuple[str, ...]]]:
    """Pair the images of the input folders by file stem.

    Args:
        folders (dict[str, str]): Input folders by role (``{'mse': ..., 'gan': ...}``), in the order of the tuples.

    Returns:
        tuple: ``(pairs, absent)``: one tuple of paths per stem present in every folder (sorted by stem), and per
        stem missing from some folder, the roles of the folders it is missing from.

    Raises:
        DesraSettingsError: If a folder does not exist or holds no image, or holds two images of one stem.
    """
    from desra_basicsr.image_io import IMAGE_EXTENSIONS, list_images, pair_by_stem

    for role, folder in folders.items():
        require_folder(folder, role)
        if not list_images(folder):
            raise DesraSettingsError(f'{folder}: --{role} holds no image ({", ".join(IMAGE_EXTENSIONS)})')
    with settings_phase():
        pairs, missing = pair_by_stem(list(folders.values()))
    absent = {
        name: tuple(role for role, folder in folders.items() if folder in lacking)
        for name, lacking in missing.items()
    }
    return pairs, absent


def pair_inputs(folders: Mapping[str, str]) -> Tuple[List[Tuple[str, ...]], Dict[str, str]]:
    """Pair the images of the input folders by file stem, with a message per stem that has no partner.

    Args:
        folders (dict[str, str]): Input folders by role (``{'mse': ..., 'gan': ...}``), in the order of the tuples.

    Returns:
        tuple: ``(pairs, messages)``: the pairs of :func:`pair_folders`, and per stem missing from some folder, a
        message naming those folders (for :attr:`desra_basicsr.jobs.core.FolderJob.failures`).

    Raises:
        DesraSettingsError: If a folder does not exist or holds no image, or holds two images of one stem.
    """
    pairs, absent = pair_folders(folders)
    messages = {
        name: f'{name}: no partner file in ' + ', '.join(f'--{role} {folders[role]}' for role in roles)
        for name, roles in absent.items()
    }
    return pairs, messages


def _inside(path: str, folder: str) -> bool:
    path, folder = osp.realpath(path), osp.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _limit(folder: str, name: str, default: int) -> int:
    try:
        return int(os.pathconf(folder, name))
    except (OSError, ValueError):
        return default


def _check_name(path: str, existing: str, option: str) -> None:
    """Refuse a path the file system cannot hold below its nearest existing folder ``existing``."""
    name_max = _limit(existing, 'PC_NAME_MAX', NAME_MAX)
    for part in osp.relpath(path, existing).split(os.sep):
        if len(os.fsencode(part)) > name_max:
            raise DesraSettingsError(f'{option}: the name {part[:40]}... is {len(os.fsencode(part))} bytes long, more '
                                     f'than the {name_max} a file name may have; choose a shorter {option}')
    path_max = _limit(existing, 'PC_PATH_MAX', PATH_MAX)
    if len(os.fsencode(path)) >= path_max:
        raise DesraSettingsError(f'{option} {path[:60]}...: the path is {len(os.fsencode(path))} bytes long, more '
                                 f'than the {path_max - 1} a path may have; choose a shorter {option}')


def check_out_dir(out_dir: str, input_dirs: Mapping[str, str], option: str = '--out') -> None:
    """Check that ``out_dir`` can take the job's outputs, before any work is done (nothing is created).

    Args:
        out_dir (str): Output folder.
        input_dirs (dict[str, str]): Input folders by role (``--mse``, ``--gan``, ...).
        option (str): The option that gave ``out_dir``, for messages.

    Raises:
        DesraSettingsError: If ``out_dir`` is empty, is (inside) an input folder, is a file, is not writable, or has
            a name the file system cannot hold.
    """
    if not out_dir or '\0' in out_dir:
        raise DesraSettingsError(f'{option} {out_dir!r}: give the path of a folder')
    for role, folder in input_dirs.items():
        if folder and _inside(out_dir, folder):
            raise DesraSettingsError(f'{out_dir}: the output folder is (inside) the --{role} input folder {folder}; '
                                     f'choose another {option}')
    path = normalise_path(out_dir)
    existing = path
    while not osp.exists(existing):  # the folder is created later, inside its nearest existing ancestor
        existing = osp.dirname(existing)
    if not osp.isdir(existing):
        raise DesraSettingsError(f'{out_dir}: {existing} exists and is not a folder; choose another {option}')
    _check_name(path, existing, option)
    try:
        fd, probe = tempfile.mkstemp(prefix='.write-test.', dir=existing)
        os.close(fd)
        os.remove(probe)
    except OSError as err:
        raise DesraSettingsError(f'{out_dir}: cannot write to {existing} ({err.strerror})') from err


def check_out_file(path: str, input_dirs: Mapping[str, str], option: str = '--out') -> None:
    """Check that a single output file can be written (its folder is created), before any work is done.

    Args:
        path (str): Output file.
        input_dirs (dict[str, str]): Input folders by role; the file may not be inside one.
        option (str): The option that gave ``path``, for messages.

    Raises:
        DesraSettingsError: If the file would land in an input folder, is a folder, or cannot be written.
    """
    if not path or '\0' in path:
        raise DesraSettingsError(f'{option} {path!r}: give the path of a file')
    if osp.isdir(path):
        raise DesraSettingsError(f'{path}: is a folder; give a file name')
    check_out_dir(osp.dirname(normalise_path(path)), input_dirs, option)
    _check_name(normalise_path(path), osp.dirname(normalise_path(path)), option)
