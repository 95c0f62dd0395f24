"""``desra report``: an HTML page and PNG grids showing what DeSRA detected (and removed), per image.

Python API: :mod:`desra_basicsr.jobs.report`.
"""
import argparse

from desra_basicsr.commands import job_command
from desra_basicsr.jobs.report import ReportSettings
from desra_basicsr.settings import default_of


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``report`` sub-command.

    Args:
        subparsers (argparse._SubParsersAction): The ``desra`` sub-parsers.
    """
    parser = subparsers.add_parser(
        'report',
        help='write an HTML page + PNG grids of LR / MSE-SR / GAN-SR / mask / pseudo-GT per image',
        description='Write OUT/index.html (self-contained: grids embedded as base64 PNG unless --link) and '
        'OUT/grids/<stem>.png: for each image the LR input, MSE-SR and GAN-SR outputs, the detected mask over '
        'the GAN-SR output, the pseudo-GT (computed from the mask unless --pseudo-gt is given) and the '
        'fine-tuned output when --finetuned is given, and with --fused (a folder written by desra fuse) the fused '
        'output and the fusion column (the source of each region, one colour per source), sorted by detected '
        'artifact area. Files are paired by stem; images missing from a folder are skipped with a notice.')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--lr', required=True, help='folder of LR inputs')
    parser.add_argument('--mse', required=True, help='folder of MSE-SR outputs')
    parser.add_argument('--gan', required=True, help='folder of GAN-SR outputs')
    parser.add_argument('--masks', required=True, help='folder of detected masks (of the GAN-SR outputs)')
    parser.add_argument('--pseudo-gt', help='folder of pseudo-GT images (default: computed from the masks)')
    parser.add_argument('--finetuned', help='folder of the fine-tuned model\'s outputs')
    parser.add_argument('--finetuned-masks', help='folder of masks detected on the fine-tuned outputs')
    parser.add_argument('--fused', help='output folder of desra fuse: adds the fused output and the fusion column')
    tile_height = default_of(ReportSettings, 'tile_height')
    parser.add_argument(
        '--tile-height', type=int, default=tile_height, help=f'tile height in pixels (default {tile_height})')
    parser.add_argument(
        '--link', action='store_true', help='link the PNG grids from the page instead of embedding them')
    parser.add_argument('--title', default=default_of(ReportSettings, 'title'), help='page title')
    parser.add_argument(
        '--dilate',
        type=float,
        default=default_of(ReportSettings, 'dilate'),
        help='computed pseudo-GT: grow masks by this many pixels')
    parser.add_argument(
        '--feather',
        type=float,
        default=default_of(ReportSettings, 'feather'),
        help='computed pseudo-GT: soft mask edges, pixels')
    parser.set_defaults(func=job_command('desra_basicsr.jobs.report', 'ReportSettings', report))


def report(result, args: argparse.Namespace) -> None:
    """Print where the report page is."""
    print(f'report of {result.images} image(s): {result.page}')
