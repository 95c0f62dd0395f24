"""``desra labelme2mask``: ground-truth artifact masks from labelme annotations.

Every ``*.json`` in ``--json`` becomes ``OUT/<json stem>.png`` (uint8 0/255, the annotated image's size), the
union of its polygon, rectangle and circle shapes (see :mod:`desra_basicsr.evaluation.labelme`). Resumable: masks
that exist are kept (other settings or changed files are refused unless ``--overwrite``); ``OUT/summary.json``
records each file's status and the error of files that failed, which are also printed once. Python API:
:mod:`desra_basicsr.jobs.labelme`.
"""
import argparse

from desra_basicsr.commands import add_overwrite_argument, job_command


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``labelme2mask`` sub-command.

    Args:
        subparsers (argparse._SubParsersAction): The ``desra`` sub-parsers.
    """
    parser = subparsers.add_parser(
        'labelme2mask',
        help='turn labelme JSON annotations into binary ground-truth masks',
        description='Rasterise the polygon / rectangle / circle shapes of each labelme JSON file in --json into a '
        'binary mask (PNG, 255 = artifact) of the image size given by imageHeight / imageWidth, written as '
        'OUT/<stem>.png. With --label, only shapes carrying one of the given labels are used.')
    parser.add_argument('--json', required=True, help='folder of labelme JSON files')
    parser.add_argument('--out', required=True, help='output folder for the masks')
    parser.add_argument('--label', nargs='+', help='use only shapes with these labels (default: every shape)')
    add_overwrite_argument(parser)
    parser.set_defaults(
        func=job_command('desra_basicsr.jobs.labelme', 'LabelmeSettings', report, lambda args: {'labels': args.label}))


def report(result, args: argparse.Namespace) -> None:
    """Print the counts and how many masks came out empty."""
    from desra_basicsr.jobs.labelme import LabelmeRecord
    empty = sum(1 for record in LabelmeRecord.done(result).values() if record.pixels == 0)
    print(result.describe() + (f'; {empty} mask(s) without any matching shape (empty)' if empty else ''))
