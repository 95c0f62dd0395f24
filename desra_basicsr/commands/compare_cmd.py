"""``desra compare``: what fine-tuning removed, as in the DeSRA paper's Table 3.

Compares detections on the outputs before fine-tuning (``--before``, B) with detections on the fine-tuned
outputs (``--after``, A): mean detected area before and after, removal rate (regions of B in which A has no
pixel, pooled over images) and addition rate (images where A has pixels outside B). With ``--gt`` it also gives
the IoU of each detection against the ground truth (the paper's "IoU before / after").
"""
import argparse

from desra_basicsr.commands import add_mask_channel_argument, job_command


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``compare`` sub-command.

    Args:
        subparsers (argparse._SubParsersAction): The ``desra`` sub-parsers.
    """
    parser = subparsers.add_parser(
        'compare',
        help='compare detections before and after fine-tuning (removal / addition rate)',
        description='Compare artifact masks detected before fine-tuning (--before) with masks detected on the '
        'fine-tuned outputs (--after), over the images present in both folders: detected area, removal rate '
        '(regions of --before with no --after pixel) and addition rate (images with --after pixels outside '
        '--before). Paper Table 3.')
    parser.add_argument('--before', required=True, help='folder of masks detected before fine-tuning')
    parser.add_argument('--after', required=True, help='folder of masks detected after fine-tuning')
    parser.add_argument('--gt', help='optional folder of ground-truth masks: adds IoU before / after')
    parser.add_argument('--json', help='write per-image and summary values to this JSON file')
    add_mask_channel_argument(parser)
    parser.set_defaults(func=job_command('desra_basicsr.jobs.compare', 'CompareSettings', report))


def report(result, args: argparse.Namespace) -> None:
    """Print the before / after table."""
    from desra_basicsr.evaluation.folders import format_table
    summary = result.summary
    header = ['images', 'area before %', 'area after %', 'removal rate %', 'addition rate %']
    keys = ['images', 'area_before', 'area_after', 'removal_rate', 'addition_rate']
    if 'iou_before' in summary:
        header += ['IoU before', 'IoU after']
        keys += ['iou_before', 'iou_after']
    print(format_table(header, [[summary[k] for k in keys]]))
    print(f'regions before: {summary["n_regions_before"]}, removed: {summary["n_removed"]}; images with new '
          f'artifacts: {summary["images_with_additions"]}')
