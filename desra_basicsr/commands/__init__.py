"""The ``desra`` console command: thin argparse shells over the Python API of :mod:`desra_basicsr.jobs`.

Each sub-command lives in its own ``*_cmd.py`` module in this package, which defines
``add_parser(subparsers)``: it adds one sub-parser and sets its ``func`` default to a callable taking the parsed
arguments and returning the exit code, made by :func:`job_command` (the job's settings built from the arguments,
the job run, its result reported, its outcome turned into the exit code). Modules
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
from typing import Any, Callable, Dict, List, Optional, Tuple

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


def add_action_parsers(subparsers: argparse._SubParsersAction, command: str, command_help: str,
                       actions: List[Tuple[str, str]], doc: str) -> List[argparse.ArgumentParser]:
    """Add a command with actions (``desra localizer train``, ``desra zoo synth``, ``desra zoo rain``).

    Args:
        subparsers (argparse._SubParsersAction): The ``desra`` sub-parsers.
        command (str): The command (``zoo``).
        command_help (str): Its one-line help.
        actions (list[tuple[str, str]]): Each action (``synth``) with its one-line help.
        doc (str): The description of the command and its actions (the command module's docstring).

    Returns:
        list[argparse.ArgumentParser]: The actions' parsers, in the order given, for their options.
    """
    parser = subparsers.add_parser(
        command, help=command_help, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parsers = parser.add_subparsers(dest='action', metavar='ACTION', required=True)
    return [
        parsers.add_parser(action, help=text, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
        for action, text in actions
    ]


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
    from desra_basicsr.jobs.core import RankError, sigterm_interrupts
    try:
        with sigterm_interrupts():  # also while the job loads its models, before its folder job starts
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


def describe_on_rank0(result: Any, args: Optional[argparse.Namespace] = None) -> None:
    """The report of a folder job: its one-line description, printed by rank 0 only under torchrun.

    Args:
        result: The job's result (with a ``describe()`` method).
        args (argparse.Namespace | None): The command's arguments (not used).
    """
    if os.environ.get('RANK', '0') == '0':
        print(result.describe())


def finished_item_on_rank0(result: Any, item: str) -> Optional[Dict[str, Any]]:
    """Print the job's description (:func:`describe_on_rank0`), then return the record of ``item`` if it finished.

    For the reports of one-item jobs (a training run) that print a line about what the item wrote.

    Args:
        result: The job's result (``describe()`` and ``items``).
        item (str): The item's name.

    Returns:
        dict | None: The item's record when it is done and this is rank 0 (or no torchrun), else None.
    """
    describe_on_rank0(result)
    record = result.items.get(item, {})
    return record if record.get('status') == 'done' and os.environ.get('RANK', '0') == '0' else None


#: A command's report: ``(result, parsed arguments) -> None``, printed on success.
Report = Callable[[Any, argparse.Namespace], None]


def job_command(module: str,
                settings: str,
                report: Report = describe_on_rank0,
                overrides: Optional[Callable[[argparse.Namespace], Dict[str, Any]]] = None
                ) -> Callable[[argparse.Namespace], int]:
    """The ``func`` of a sub-command: build the job's settings from the parsed arguments, run the job, report.

    The settings come from :func:`desra_basicsr.settings.settings_from_args` inside :func:`run_job_command`, so a
    refused value exits with 2 like any other unusable setting. The job's module is imported only when the command
    runs, so ``desra --help`` loads neither numpy nor torch.

    Args:
        module (str): The job's module, whose ``run(settings)`` is the job (e.g. ``'desra_basicsr.jobs.detect'``).
        settings (str): The name of the job's settings class in that module (e.g. ``'DetectSettings'``).
        report (Report): Prints the result (default: :func:`describe_on_rank0`).
        overrides (Callable | None): Parsed arguments -> settings fields that do not come from an argument of the
            same name.

    Returns:
        Callable: Parsed arguments -> exit code (see :func:`run_job_command`).
    """

    def run(args: argparse.Namespace) -> int:
        from desra_basicsr.settings import settings_from_args

        def build_and_run() -> Any:
            job = importlib.import_module(module)
            return job.run(settings_from_args(getattr(job, settings), args, **(overrides(args) if overrides else {})))

        return run_job_command(build_and_run, lambda result: report(result, args))

    return run


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
