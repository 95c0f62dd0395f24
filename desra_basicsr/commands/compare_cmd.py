"""``desra compare``: what fine-tuning removed, as in the DeSRA paper's Table 3.

Compares detections on the outputs before fine-tuning (``--before``, B) with detections on the fine-tuned
outputs (``--after``, A): mean detected area before and after, removal rate (regions of B in which A has no
pixel, pooled over images) and addition rate (images where A has pixels outside B). With ``--gt`` it also gives
the IoU of each detection against the ground truth (the paper's "IoU before / after").
"""
import argparse
import sys

from desra_basicsr.errors import DesraInputError


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
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``desra compare``.

    Args:
        args (argparse.Namespace): Parsed arguments.

    Returns:
        int: Exit code (0 on success, 1 on bad input).
    """
    from tqdm import tqdm

    from desra_basicsr.evaluation.folders import align_to, format_table, iter_mask_pairs, write_json
    from desra_basicsr.evaluation.mask_metrics import FinetuneComparison, iou
    from desra_basicsr.image_io import pair_by_stem, read_mask, stem

    try:
        gt_paths = {}
        if args.gt:
            gt_pairs, _ = pair_by_stem([args.before, args.gt])
            gt_paths = {stem(b): g for b, g in gt_pairs}
        comparison = FinetuneComparison()
        iou_before, iou_after = [], []
        pairs = iter_mask_pairs(args.before, args.after, names=('before', 'after'))
        for name, before, after in tqdm(pairs, desc='compare', unit='img', file=sys.stderr):
            values = comparison.add(name, before, after)
            gt_path = gt_paths.get(name)
            if gt_path is not None:
                gt = align_to(read_mask(gt_path), before.shape, gt_path)
                values['iou_before'] = 100.0 * iou(before, gt)
                values['iou_after'] = 100.0 * iou(after, gt)
                iou_before.append(values['iou_before'])
                iou_after.append(values['iou_after'])
        summary = comparison.summary()
        header = ['images', 'area before %', 'area after %', 'removal rate %', 'addition rate %']
        row = [
            summary['images'], summary['area_before'], summary['area_after'], summary['removal_rate'],
            summary['addition_rate']
        ]
        if args.gt:
            if not iou_before:
                raise DesraInputError(f'{args.gt}: no ground-truth mask matches the compared images')
            summary['gt_images'] = len(iou_before)
            summary['iou_before'] = sum(iou_before) / len(iou_before)
            summary['iou_after'] = sum(iou_after) / len(iou_after)
            header += ['IoU before', 'IoU after']
            row += [summary['iou_before'], summary['iou_after']]
        print(format_table(header, [row]))
        print(f'regions before: {summary["n_regions_before"]}, removed: {summary["n_removed"]}; images with new '
              f'artifacts: {summary["images_with_additions"]}')
        if args.json:
            write_json(
                args.json, {
                    'before': args.before,
                    'after': args.after,
                    'gt': args.gt,
                    'summary': summary,
                    'per_image': comparison.per_image
                })
        return 0
    except DesraInputError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1
