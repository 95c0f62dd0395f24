"""``desra evaluate``: IoU, region precision and recall of detected masks against ground truth (paper Table 1).

Two modes:

* score a folder of detections: ``desra evaluate --pred DIR --gt DIR [--p 0.5] [--json FILE]``;
* sweep detection methods and thresholds on MSE-SR / GAN-SR outputs and print one comparison table
  (paper Tables 1, 4, 5): ``desra evaluate --sweep --mse DIR --gan DIR --gt DIR [--methods ...]
  [--thresholds ...]``.
"""
import argparse
import sys

from desra_basicsr.errors import DesraInputError

HEADER = ('name', 'IoU', 'Precision', 'Recall', 'N_S', 'N_G')


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
    parser.add_argument('--p', type=float, default=0.5, help='overlap fraction for a region to count (default 0.5)')
    parser.add_argument('--json', help='write per-image and mean values to this JSON file')
    parser.add_argument('--per-image', action='store_true', help='score mode: also print one table row per image')
    sweep = parser.add_argument_group('sweep mode')
    sweep.add_argument('--sweep', action='store_true', help='run detection methods on --mse/--gan and compare them')
    sweep.add_argument('--mse', help='folder of MSE-SR outputs (sweep mode)')
    sweep.add_argument('--gan', help='folder of GAN-SR outputs (sweep mode)')
    sweep.add_argument('--methods', nargs='+', help='method names of `desra detect --method` (default: all)')
    sweep.add_argument(
        '--thresholds',
        nargs='+',
        type=float,
        help='thresholds of DeSRA-det and its ablations (default: 0.7); the LDL baselines carry '
        'their threshold in their name')
    sweep.add_argument('--seg-config', help='mmseg config for the semantic methods (default: SegFormer mit-b5 ADE20K)')
    sweep.add_argument(
        '--seg-checkpoint',
        help='mmseg checkpoint; without it the semantic methods run without '
        'segmentation (all class weights 1)')
    sweep.add_argument('--class-table', help='class-weight table (default: the DeSRA release table)')
    sweep.add_argument('--min-area', type=int, default=4000, help='smallest region kept by DeSRA-det (default 4000)')
    sweep.add_argument('--device', default='cpu', help='device of the detectors and the segmenter (cpu, cuda)')
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``desra evaluate``.

    Args:
        args (argparse.Namespace): Parsed arguments.

    Returns:
        int: Exit code (0 on success, 1 on bad input).
    """
    try:
        if not 0.0 <= args.p <= 1.0:
            raise DesraInputError(f'--p: must be in [0, 1], got {args.p}')
        if args.sweep:
            if not (args.mse and args.gan):
                raise DesraInputError('--sweep: needs --mse and --gan folders')
            return _sweep(args)
        if not args.pred:
            raise DesraInputError('--pred: required (or use --sweep with --mse/--gan)')
        return _score(args)
    except DesraInputError as err:
        print(f'error: {err}', file=sys.stderr)
        return 1


def _score(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from desra_basicsr.evaluation.folders import format_table, iter_mask_pairs, write_json
    from desra_basicsr.evaluation.mask_metrics import DetectionScores

    scores = DetectionScores(p=args.p)
    for name, pred, gt in tqdm(iter_mask_pairs(args.pred, args.gt), desc='evaluate', unit='img', file=sys.stderr):
        scores.add(name, pred, gt)
    summary = scores.summary()
    rows = []
    if args.per_image:
        rows = [(name, v['iou'], v['precision'], v['recall'], v['n_pred_regions'], v['n_gt_regions'])
                for name, v in scores.per_image.items()]
    rows.append((f'mean ({summary["images"]} images)', summary['iou'], summary['precision'], summary['recall'],
                 summary['n_pred_regions'], summary['n_gt_regions']))
    print(format_table(HEADER, rows))
    print(f'IoU x100 averaged over images; precision / recall pooled over regions, p = {args.p}')
    if args.json:
        write_json(args.json, {
            'pred': args.pred,
            'gt': args.gt,
            'p': args.p,
            'mean': summary,
            'per_image': scores.per_image
        })
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from desra_basicsr.detection.class_weights import load_class_weights
    from desra_basicsr.detection.methods import METHODS
    from desra_basicsr.detection.morphology import MorphologyConfig
    from desra_basicsr.detection.segmenters import build_segmenter
    from desra_basicsr.evaluation.folders import format_table, write_json
    from desra_basicsr.evaluation.sweep import build_entries, run_entries
    from desra_basicsr.image_io import pair_by_stem

    methods = args.methods or list(METHODS)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise DesraInputError(f'--methods: unknown {unknown}; choose from {sorted(METHODS)}')
    triples, missing = pair_by_stem([args.mse, args.gan, args.gt])
    if missing:
        print(
            f'notice: {len(missing)} image(s) lack a partner in --mse / --gan / --gt, not scored: '
            f'{", ".join(sorted(missing)[:5])}',
            file=sys.stderr)
    if not triples:
        raise DesraInputError(f'{args.gt}: no image present in --mse, --gan and --gt')
    semantic = any(METHODS[m].semantics for m in methods)
    segmenter, table = None, None
    if semantic and args.seg_checkpoint:
        segmenter = build_segmenter('mmseg', config=args.seg_config, checkpoint=args.seg_checkpoint, device=args.device)
        table = load_class_weights(args.class_table, tuple(segmenter.class_names))
    elif semantic:
        print(
            'notice: no --seg-checkpoint: semantic methods run without segmentation (all class weights 1)',
            file=sys.stderr)
    try:
        entries = build_entries(methods, args.thresholds, segmenter, table, MorphologyConfig(min_area=args.min_area),
                                args.device, args.p)
    except ValueError as err:
        raise DesraInputError(f'--thresholds / --min-area: {err}') from err
    run_entries(entries, triples, progress=lambda it: tqdm(it, desc='sweep', unit='img', file=sys.stderr))
    rows, records = [], []
    for entry in entries:
        summary = entry.scores.summary()
        threshold = '-' if entry.threshold is None else f'{entry.threshold:g}'
        rows.append((entry.method, threshold, summary['iou'], summary['precision'], summary['recall'],
                     summary['n_pred_regions'], summary['n_gt_regions']))
        records.append({
            'method': entry.method,
            'threshold': entry.threshold,
            'mean': summary,
            'per_image': entry.scores.per_image
        })
    print(format_table(('method', 'threshold') + HEADER[1:], rows))
    print(f'{len(triples)} images; IoU x100 averaged over images; precision / recall pooled over regions, '
          f'p = {args.p}; LDL baselines carry their threshold in their name')
    if args.json:
        write_json(args.json, {'mse': args.mse, 'gan': args.gan, 'gt': args.gt, 'p': args.p, 'results': records})
    return 0
