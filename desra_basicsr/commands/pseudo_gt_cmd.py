"""``desra pseudo-gt``: write DeSRA pseudo-GT images ``M * y_mse + (1 - M) * y_gan`` (paper eq. 10).

For users who prefer precomputed training data (``PseudoGTPairedDataset`` with ``dataroot_gt``) over merging on
the fly. Images are paired by file stem across ``--mse``, ``--gan`` and ``--masks`` (e.g. the output folder of
``desra detect``). Outputs:

* ``OUT/<stem>.png``: the pseudo-GT (lossless PNG), written atomically;
* ``OUT/summary.json``: the settings, and per image ``status`` (done / error), ``artifact_fraction`` (mask weight
  mean), ``height``, ``width`` (and ``mask_thresholded`` for masks that were not binary).

Resumable (a folder written with other settings is refused unless ``--overwrite``); under
``python -m torch.distributed.run`` every rank merges its share. Exit code: 0, 1 when some image failed (missing
partner, size mismatch, unreadable file), 2 for unusable arguments. Python API: :mod:`desra_basicsr.jobs.pseudo_gt`.
"""
import argparse

from desra_basicsr.commands import add_mask_channel_argument, add_overwrite_argument, job_command
from desra_basicsr.jobs.pseudo_gt import PseudoGTSettings
from desra_basicsr.settings import default_of


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``pseudo-gt`` sub-command.

    Args:
        subparsers (argparse._SubParsersAction): The ``desra`` sub-parsers.
    """
    parser = subparsers.add_parser(
        'pseudo-gt',
        help='merge MSE-SR and GAN-SR outputs with artifact masks into pseudo-GT images',
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--mse', required=True, help='folder of MSE-SR outputs')
    parser.add_argument('--gan', required=True, help='folder of GAN-SR outputs')
    parser.add_argument('--masks', required=True, help='folder of artifact masks (e.g. `desra detect` output)')
    parser.add_argument('--out', required=True, help='output folder for pseudo-GT PNGs and summary.json')
    dilate, feather = default_of(PseudoGTSettings, 'dilate'), default_of(PseudoGTSettings, 'feather')
    parser.add_argument(
        '--dilate', type=float, default=dilate, help=f'grow masks by this many pixels (default {dilate:g})')
    parser.add_argument(
        '--feather',
        type=float,
        default=feather,
        help=f'soft mask edges: linear fall-off over this many pixels outside the mask (default {feather:g})')
    add_mask_channel_argument(parser)
    add_overwrite_argument(parser)
    parser.set_defaults(func=job_command('desra_basicsr.jobs.pseudo_gt', 'PseudoGTSettings'))
