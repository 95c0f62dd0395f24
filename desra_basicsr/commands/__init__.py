"""The ``desra`` console command: thin argparse shells over the Python API of :mod:`desra_basicsr.jobs`.

Each sub-command lives in its own ``*_cmd.py`` module in this package, which defines
``add_parser(subparsers)``: it adds one sub-parser and sets its ``func`` default to a callable taking the parsed
arguments and returning the exit code (usually: build the job's settings, then :func:`run_job_command`). Modules
are discovered by file name, so adding a command touches no other file. Parsers import only the standard library
and the job modules' settings (which import nothing heavy), so ``desra --help`` loads neither numpy, torch nor
BasicSR; the work is imported by the jobs' ``run``.

Exit codes, the same for every command: 0 success; 1 when an input failed (a file that cannot be read, a size
mismatch, a failed item of a folder job, a torchrun rank that stopped answering); 2 for unusable arguments (argparse
errors, missing or empty folders, invalid values, weights that do not load, an unusable or foreign ``--out``).
"""
import argparse
import importlib
import os
import os.path as osp
import signal
import sys
from typing import Any, Callable, Dict, List, Optional

from desra_basicsr.version import __version__


def build_parser() -> argparse.ArgumentParser:
    """Build the ``desra`` argument parser with every discovered sub-command.

    Returns:
        argparse.ArgumentParser: The parser.
    """
    parser = argparse.ArgumentParser(
        prog='desra',
        description='DeSRA for BasicSR: detect the artifacts of GAN-SR models against their MSE-SR twin, build '
        'pseudo ground truth and fine-tune the artifacts away.')
    parser.add_argument('--version', action='version', version=f'desra-basicsr {__version__}')
    subparsers = parser.add_subparsers(dest='command', metavar='COMMAND')
    folder = osp.dirname(osp.abspath(__file__))
    for name in sorted(f[:-3] for f in os.listdir(folder) if f.endswith('_cmd.py')):
        importlib.import_module(f'{__name__}.{name}').add_parser(subparsers)
    return parser


def add_overwrite_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--overwrite`` to a folder command (see :mod:`desra_basicsr.jobs.core`).

    Args:
        parser (argparse.ArgumentParser): The sub-command's parser.
    """
    parser.add_argument(
        '--overwrite',
        action='store_true',
        help='compute every output again, even when --out holds outputs made with other settings or inputs '
        '(without it, such a folder is refused and a folder made with the same settings is resumed)')


def add_mask_channel_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--mask-channel`` (see :func:`desra_basicsr.image_io.decode_mask`).

    Args:
        parser (argparse.ArgumentParser): The sub-command's parser.
    """
    parser.add_argument(
        '--mask-channel',
        type=int,
        choices=(0, 1, 2, 3),
        help='channel of colour masks that holds the mask: 0 red, 1 green, 2 blue, 3 alpha (default: masks must be '
        'single-channel, or colour with equal channels)')


def add_setting_arguments(parser: argparse.ArgumentParser, cls: type, helps: Dict[str, str]) -> None:
    """Add one option per settings field, typed and defaulted by the field (``--min-area`` for ``min_area``).

    Args:
        parser (argparse.ArgumentParser): The sub-command's parser.
        cls (type): The job's settings class (:class:`desra_basicsr.settings.Settings`).
        helps (dict[str, str]): Field name -> help text (the default is appended).
    """
    from desra_basicsr.settings import default_of
    for name, text in helps.items():
        default = default_of(cls, name)
        parser.add_argument(
            '--' + name.replace('_', '-'), type=type(default), default=default, help=f'{text} (default: {default})')


def run_job_command(job: Callable[[], Any], report: Optional[Callable[[Any], None]] = None) -> int:
    """Run a job of :mod:`desra_basicsr.jobs` for a command and turn its outcome into the exit code.

    Build the job's settings inside ``job`` (e.g. ``lambda: run(settings_from_args(DetectSettings, args))``), so
    that a refused value exits with 2 like any other unusable setting.

    Args:
        job (Callable): Builds the settings, runs the job and returns its result.
        report (Callable | None): Prints the result (called on success), e.g. :func:`describe_on_rank0`.

    Returns:
        int: 2 for unusable settings, 1 when an input failed, 128 + the signal number when interrupted (Ctrl-C:
        130, SIGTERM: 143), else the result's ``exit_code`` (0 without one).
    """
    from desra_basicsr.errors import DesraInputError, DesraSettingsError
    from desra_basicsr.jobs.core import RankError
    try:
        result = job()
    except DesraSettingsError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    except (DesraInputError, RankError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
    except KeyboardInterrupt as err:
        signum = int(getattr(err, 'signum', signal.SIGINT))
        print(f'interrupted ({signal.Signals(signum).name}): the outputs finished so far are kept; run the same '
              'command again to resume', file=sys.stderr)
        return 128 + signum
    if report is not None:
        report(result)
    return int(getattr(result, 'exit_code', 0))


def describe_on_rank0(result: Any) -> None:
    """The report of a folder job: its one-line description, printed by rank 0 only under torchrun.

    Args:
        result: The job's result (with a ``describe()`` method).
    """
    if os.environ.get('RANK', '0') == '0':
        print(result.describe())


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the ``desra`` console script.

    Args:
        argv (list[str] | None): Arguments without the program name; ``sys.argv[1:]`` when None.

    Returns:
        int: Process exit code.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, 'func', None) is None:
        parser.print_help()
        return 2
    return int(args.func(args) or 0)


if __name__ == '__main__':
    sys.exit(main())
