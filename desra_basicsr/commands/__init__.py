"""The ``desra`` console command.

Each sub-command lives in its own ``*_cmd.py`` module in this package, which defines
``add_parser(subparsers)``: it adds one sub-parser and sets its ``func`` default to a callable taking the parsed
arguments and returning the exit code. Modules are discovered by file name, so adding a command touches no
other file. Heavy imports (torch, BasicSR, mmseg) belong inside the ``func``, so ``desra --help`` stays quick.
"""
import argparse
import importlib
import os
import os.path as osp
import sys
from typing import List, Optional

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
