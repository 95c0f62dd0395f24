"""``desra calibrate``: per-class weights of the semantic adjustment, measured on a data set (paper eq. 8).

For every class ``k`` of the segmenter, ``A_k`` is the ``--percentile`` (85 in the paper) of the indicator ``D``
over all pixels of that class across the MSE-SR / GAN-SR pairs, and the weight is ``1 / A_k``. Memory stays flat
in the number of images (streaming histograms, see :mod:`desra_basicsr.evaluation.calibration`). The output is a
YAML table ``class name: weight`` that ``desra detect`` accepts as its class table; ``--released-format`` also
writes the authors' ``name--idx`` text format (20 bins). Python API: :mod:`desra_basicsr.jobs.calibrate`.
"""
import argparse

from desra_basicsr.commands import job_command
from desra_basicsr.jobs.calibrate import SEGMENT_IMAGES, CalibrateSettings
from desra_basicsr.settings import default_of


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``calibrate`` sub-command.

    Args:
        subparsers (argparse._SubParsersAction): The ``desra`` sub-parsers.
    """
    parser = subparsers.add_parser(
        'calibrate',
        help='measure per-class weights (1 / percentile of D per class) on MSE-SR / GAN-SR pairs',
        description='Compute, for each segmentation class, the --percentile of the indicator D over every pixel of '
        'the class across the pairs (files paired by stem), and write the class weights 1 / A_k as a YAML table '
        'usable by `desra detect`. Without --seg-checkpoint there is no segmenter: every pixel falls in one '
        'class and all classes get the same weight.')
    parser.add_argument('--mse', required=True, help='folder of MSE-SR outputs')
    parser.add_argument('--gan', required=True, help='folder of GAN-SR outputs')
    parser.add_argument('--seg-config', help='mmseg config (default: the SegFormer mit-b5 ADE20K config)')
    parser.add_argument('--seg-checkpoint', help='mmseg checkpoint; without it, no segmentation (one class)')
    parser.add_argument(
        '--segment-image',
        choices=SEGMENT_IMAGES,
        default=default_of(CalibrateSettings, 'segment_image'),
        help='which output is segmented (gan: as the release; mse: as the paper appendix)')
    parser.add_argument(
        '--device', default=default_of(CalibrateSettings, 'device'), help='segmenter device (cpu, cuda, cuda:N)')
    percentile, bins = default_of(CalibrateSettings, 'percentile'), default_of(CalibrateSettings, 'bins')
    parser.add_argument(
        '--percentile', type=float, default=percentile, help=f'percentile of D per class (default {percentile:g})')
    parser.add_argument('--bins', type=int, default=bins, help=f'histogram bins over [0, 1] (default {bins})')
    parser.add_argument('--out', required=True, help='output YAML table (class name: weight)')
    parser.add_argument('--released-format', metavar='FILE', help='also write the released name--idx table here')
    parser.set_defaults(func=job_command('desra_basicsr.jobs.calibrate', 'CalibrateSettings', report))


def report(result, args: argparse.Namespace) -> None:
    """Print where the weights went and the weights of the most frequent classes."""
    print(f'{result.pairs} pairs; class weights written to {result.out}' +
          (f' and {result.released_format}' if result.released_format else ''))
    if not result.segmented:
        print(f'  all pixels ({result.pixels[0]}): A = {result.percentiles[0]:.4f}  w = {result.weights[0]:.4f}')
        return
    seen = [k for k in range(len(result.names)) if k not in result.unseen]
    for k in sorted(seen, key=lambda k: -result.pixels[k])[:10]:
        print(f'  {result.names[k]:<20} A = {result.percentiles[k]:.4f}  w = {result.weights[k]:.4f}  '
              f'({result.pixels[k]} px)')
    if result.unseen:
        print(f'  {len(result.unseen)} class(es) without pixels: weight 1')
