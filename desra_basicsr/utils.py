"""Small helpers shared by the plugin's sub-packages."""
import importlib
import os
import os.path as osp
import re
import sys
import tempfile
from contextlib import contextmanager
from typing import Any, Iterable, Iterator, List


def import_modules_with_suffix(package_name: str, package_file: str, suffix: str) -> List[object]:
    """Import every ``*<suffix>.py`` module beside a package's ``__init__.py``.

    This is how BasicSR and Real-ESRGAN make registration a side effect of importing a package, without
    hard-coding the package name (it comes from the caller's ``__name__``).

    Args:
        package_name (str): The importing package's ``__name__``.
        package_file (str): The importing package's ``__file__``.
        suffix (str): File-name suffix without extension, e.g. ``'_arch'``.

    Returns:
        list: The imported modules, sorted by file name.
    """
    folder = osp.dirname(osp.abspath(package_file))
    names = sorted(osp.splitext(f)[0] for f in os.listdir(folder) if f.endswith(f'{suffix}.py'))
    return [importlib.import_module(f'{package_name}.{name}') for name in names]


#: Prefix of the temporary files of :func:`atomic_write_path`: ``.desra-tmp-<8 random chars><ext>``.
TEMP_PREFIX = '.desra-tmp-'
#: The whole name of such a temporary file (``tempfile.mkstemp``'s random part: lowercase letters, digits, ``_``).
TEMP_NAME = re.compile(r'^' + re.escape(TEMP_PREFIX) + r'[a-z0-9_]{8}(\.[^.]+)?$')


def remove_stale_temp_files(folders: Iterable[str]) -> None:
    """Remove the temporary files (:data:`TEMP_NAME`) a killed run left in these folders; nothing else is touched.

    Args:
        folders (iterable[str]): Folders to clean (missing ones are skipped).
    """
    for folder in sorted(set(folders)):
        if osp.isdir(folder):
            for name in os.listdir(folder):
                if TEMP_NAME.match(name) and osp.isfile(osp.join(folder, name)):
                    os.remove(osp.join(folder, name))


@contextmanager
def atomic_write_path(path: str) -> Iterator[str]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    Readers never see a half-written file: on any exception the temporary file is removed and ``path`` is
    left as it was. The temporary name (:data:`TEMP_NAME`) keeps ``path``'s extension so writers that choose a
    format by extension (``cv2.imwrite``, ``np.save``) work unchanged, and its prefix is distinctive, so that removing
    the temporary files a killed run left never touches a user's own file.

    Args:
        path (str): Final destination.

    Yields:
        str: The temporary path to write to.

    Raises:
        OSError: If the file cannot be written (a full disk, no permission); its ``filename`` is ``path``.
    """
    folder = osp.dirname(osp.abspath(path))
    tmp = None
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=osp.splitext(path)[1], dir=folder)
        os.close(fd)
        # mkstemp creates the file 0600; give the result the mode any newly created file gets (0666 minus umask).
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        yield tmp
        os.replace(tmp, path)
    except OSError as err:
        if err.errno is None or err.filename not in (None, tmp, folder):
            raise
        raise OSError(err.errno, err.strerror or str(err), path) from err
    finally:
        if tmp is not None and osp.exists(tmp):
            os.remove(tmp)


def notice(message: str) -> None:
    """Print a notice on stderr (on rank 0 only under torchrun).

    Args:
        message (str): The notice, without the ``notice:`` prefix.
    """
    if os.environ.get('RANK', '0') == '0':
        print(f'notice: {message}', file=sys.stderr)


def option_differences(old: Any, new: Any, prefix: str = '') -> Iterator[str]:
    """Dotted keys whose values differ between two option trees (nested dicts, as read from YAML).

    Args:
        old (Any): One tree.
        new (Any): The other.
        prefix (str): Prefix of the keys yielded (the path to ``old`` and ``new`` in a larger tree).

    Yields:
        str: A dotted key, e.g. ``train.optim_g.lr``; a key present in one tree only counts as differing.
    """
    if isinstance(old, dict) and isinstance(new, dict):
        for key in list(old) + [k for k in new if k not in old]:
            yield from option_differences(old.get(key), new.get(key), f'{prefix}{key}.')
    elif old != new:
        yield prefix.rstrip('.')
