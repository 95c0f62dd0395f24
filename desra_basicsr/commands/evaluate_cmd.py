"""``desra evaluate``: IoU, region precision and recall of detected masks against ground truth (paper Table 1).

Two modes:

* score a folder of detections: ``desra evaluate --pred DIR --gt DIR [--p 0.5] [--json FILE]``;
* sweep detection methods and thresholds on MSE-SR / GAN-SR outputs and print one comparison table
  (paper Tables 1, 4, 5): ``desra evaluate --sweep --mse DIR --gan DIR --gt DIR [--methods ...]
  [--thresholds ...]``.
"""
import argparse

from desra_basicsr.commands import add_mask_channel_argument, job_command
from desra_basicsr.constants import DETECT_THRESHOLD
from desra_basicsr.jobs.evaluate import SWEEP_METHODS, EvaluateSettings
from desra_basicsr.settings import default_of

HEADER = ('name', 'IoU', 'Precision', 'Recall', 'N_S', 'N_G')
SCORES = ('iou', 'precision', 'recall', 'n_pred_regions', 'n_gt_regions')


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``evaluate`` sub-command.

    Args:
        subparsers (argparse._SubParsersAction): The ``desra`` sub-parsers.
    """
    parser = subparsers.add_parser(
        'evaluate',
        help='score artifact masks against ground truth (IoU, region precision / recall)',
        description='Score detected artifact masks against ground-truth masks (PNG, >127 is artifact) over the '
        'images present in both folders. IoU is averaged over images and reported x100; precision and recall '
        'count 8-connected regions covered at least --p, pooled over all images. With --sweep, run detection '
        'methods at several thresholds on --mse/--gan outputs and print one comparison table.')
    parser.add_argument('--pred', help='folder of detected masks (score mode)')
    parser.add_argument('--gt', required=True, help='folder of ground-truth masks')
    p = default_of(EvaluateSettings, 'p')
    parser.add_argument('--p', type=float, default=p, help=f'overlap fraction for a region to count (default {p})')
    parser.add_argument('--json', help='write per-image and mean values to this JSON file')
    parser.add_argument('--per-image', action='store_true', help='score mode: also print one table row per image')
    sweep = parser.add_argument_group('sweep mode')
    sweep.add_argument('--sweep', action='store_true', help='run detection methods on --mse/--gan and compare them')
    sweep.add_argument('--mse', help='folder of MSE-SR outputs (sweep mode)')
    sweep.add_argument('--gan', help='folder of GAN-SR outputs (sweep mode)')
    sweep.add_argument(
        '--methods', nargs='+', help=f'methods of `desra detect --method` (default: all of {", ".join(SWEEP_METHODS)})')
    sweep.add_argument(
        '--thresholds',
        nargs='+',
        type=float,
        help=f'thresholds of DeSRA-det and its ablations (default: {DETECT_THRESHOLD}); the LDL baselines carry '
        'their threshold in their name')
    sweep.add_argument('--seg-config', help='mmseg config for the semantic methods (default: SegFormer mit-b5 ADE20K)')
    sweep.add_argument(
        '--seg-checkpoint',
        help='mmseg checkpoint; without it the semantic methods run without '
        'segmentation (all class weights 1)')
    sweep.add_argument('--class-table', help='class-weight table (default: the DeSRA release table)')
    min_area = default_of(EvaluateSettings, 'min_area')
    sweep.add_argument(
        '--min-area', type=int, default=min_area, help=f'smallest region kept by DeSRA-det (default {min_area})')
    sweep.add_argument(
        '--device',
        default=default_of(EvaluateSettings, 'device'),
        help='device of the detectors and the segmenter (cpu, cuda, cuda:N)')
    add_mask_channel_argument(parser)
    parser.set_defaults(func=job_command('desra_basicsr.jobs.evaluate', 'EvaluateSettings', report))


def report(result, args: argparse.Namespace) -> None:
    """Print the scores (per image with ``--per-image``), or the sweep's table."""
    from desra_basicsr.evaluation.folders import format_table
    if args.sweep:
        rows = [(r['method'], '-' if r['threshold'] is None else f'{r["threshold"]:g}',
                 *(r['mean'][k] for k in SCORES)) for r in result.results]
        print(format_table(('method', 'threshold') + HEADER[1:], rows))
        print(f'{result.images} images; IoU x100 averaged over images; precision / recall pooled over regions, '
              f'p = {result.p}; LDL baselines carry their threshold in their name')
        return
    rows = [(name, *(v[k] for k in SCORES)) for name, v in result.per_image.items()] if args.per_image else []
    rows.append((f'mean ({result.images} images)', *(result.mean[k] for k in SCORES)))
    print(format_table(HEADER, rows))
    print(f'IoU x100 averaged over images; precision / recall pooled over regions, p = {result.p}')
