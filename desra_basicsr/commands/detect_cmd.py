"""``desra detect``: DeSRA-det artifact masks for folders of MSE-SR / GAN-SR outputs paired by file name.

Writes, for each pair ``<stem>``:

* ``OUT/<stem>.png``: uint8 0/255 mask (255 = artifact) of the image size;
* with ``--save-maps``: ``OUT/maps/<stem>_D.npy`` (float32 indicator before the semantic adjustment) and, when
  semantics are on, ``OUT/maps/<stem>_D_adjusted.npy`` and ``OUT/maps/<stem>_seg.png`` (colour label map);
* ``OUT/summary.json``: per image ``status`` (done / skipped / error), ``artifact_fraction``, ``n_regions``,
  image size, or the error ``message``.

Completed outputs are skipped (resume by running the same command again). Under ``python -m
torch.distributed.run --nproc_per_node=N -m desra_basicsr detect ...`` each rank handles a disjoint share of the
pairs and rank 0 writes the summary. The exit code is non-zero when any pair failed.
"""
import argparse
import os.path as osp
import sys

DEFAULT_THRESHOLD = 0.7
DEFAULT_MIN_AREA = 4000


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``detect`` sub-command.

    Args:
        subparsers (argparse._SubParsersAction): The ``desra`` sub-parsers.
    """
    from desra_basicsr.detection.methods import METHODS
    parser = subparsers.add_parser(
        'detect',
        help='detect GAN-SR artifacts against MSE-SR outputs (DeSRA-det)',
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--mse', required=True, help='folder of MSE-SR outputs')
    parser.add_argument('--gan', required=True, help='folder of GAN-SR outputs (same file stems)')
    parser.add_argument('--out', required=True, help='output folder for masks, maps and summary.json')
    parser.add_argument(
        '--method',
        default='desra',
        choices=sorted(METHODS),
        help='detection method: ' + '; '.join(f'{name}: {m.description}' for name, m in sorted(METHODS.items())))
    parser.add_argument(
        '--semantic',
        choices=['none', 'mmseg'],
        default=None,
        help='segmenter backend (default: mmseg when --seg-checkpoint is given, otherwise none = all weights 1)')
    parser.add_argument('--seg-config', default=None, help='mmseg config (default: SegFormer mit-b5 ADE20K 640x640)')
    parser.add_argument('--seg-checkpoint', default=None, help='mmseg checkpoint (.pth) matching --seg-config')
    parser.add_argument('--class-table', default=None, help='class weight table (default: the DeSRA release)')
    parser.add_argument(
        '--segment-input', choices=['gan', 'mse'], default='gan', help='image to segment (release: gan)')
    parser.add_argument('--threshold', type=float, default=DEFAULT_THRESHOLD, help='artifact where map < this')
    parser.add_argument('--min-area', type=int, default=DEFAULT_MIN_AREA, help='drop regions with area <= this')
    parser.add_argument(
        '--min-area-ref',
        type=int,
        default=None,
        help='image area (pixels) --min-area is meant for; scales it by H*W/ref for each image (default: no scaling)')
    parser.add_argument(
        '--numerator', choices=['release', 'paper'], default='release', help='indicator numerator: +C or not')
    parser.add_argument('--device', default='cpu', help='cpu, cuda or cuda:N')
    parser.add_argument('--save-maps', action='store_true', help='also save D, adjusted D and the segmentation')
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run ``desra detect``.

    Args:
        args (argparse.Namespace): Parsed arguments.

    Returns:
        int: 0 if every pair succeeded, 1 if some failed, 2 for unusable arguments.
    """
    import cv2
    import numpy as np
    import torch

    from desra_basicsr.detection.class_weights import load_class_weights
    from desra_basicsr.detection.methods import METHODS, build_detector
    from desra_basicsr.detection.morphology import MorphologyConfig
    from desra_basicsr.detection.segmenters import build_segmenter
    from desra_basicsr.errors import DesraInputError
    from desra_basicsr.file_jobs import dist_info, run_file_jobs, summary_exit_code
    from desra_basicsr.image_io import pair_by_stem, read_image, stem, write_image, write_mask
    from desra_basicsr.inference import resolve_device
    from desra_basicsr.utils import atomic_write_path

    try:
        device = str(resolve_device(args.device))
        rank, world_size = dist_info()
        if device == 'cuda' and world_size > 1:
            device = f'cuda:{rank % torch.cuda.device_count()}'
        if world_size > 1:
            # torchrun sets OMP_NUM_THREADS=1 per rank (unless the user set it) so that N ranks do not each start a
            # thread per core; the indicator's strip pool follows OpenCV's thread count, so give it the same budget.
            cv2.setNumThreads(torch.get_num_threads())
        method = METHODS[args.method]
        backend = args.semantic or ('mmseg' if args.seg_checkpoint else 'none')
        if not method.semantics:
            backend = 'none'
        elif backend == 'none' and rank == 0:
            print('notice: no segmentation (--semantic none or no --seg-checkpoint): all class weights are 1, '
                  "the paper's 'without semantics' ablation", file=sys.stderr)
        class_weights = load_class_weights(args.class_table) if backend != 'none' else None  # before the slow build
        segmenter = build_segmenter(backend, config=args.seg_config, checkpoint=args.seg_checkpoint, device=device)
        detector = build_detector(
            args.method,
            morphology=MorphologyConfig(
                threshold=args.threshold, min_area=args.min_area, min_area_reference=args.min_area_ref),
            segmenter=segmenter,
            class_weights=class_weights,
            segment_input=args.segment_input,
            numerator=args.numerator,
            device=device)
        pairs, missing = pair_by_stem([args.mse, args.gan])
    except (DesraInputError, ValueError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2

    maps_dir = osp.join(args.out, 'maps')
    semantics = backend != 'none'
    palette = np.random.default_rng(0).integers(0, 256, (max(segmenter.num_classes, 1), 3), dtype=np.uint8)

    def outputs(pair):
        name = stem(pair[0])
        paths = [osp.join(args.out, f'{name}.png')]
        if args.save_maps:
            paths.append(osp.join(maps_dir, f'{name}_D.npy'))
            if semantics:
                paths += [osp.join(maps_dir, f'{name}_D_adjusted.npy'), osp.join(maps_dir, f'{name}_seg.png')]
        return paths

    def save_npy(path, array):
        with atomic_write_path(path) as tmp:
            np.save(tmp, array.astype(np.float32))

    def process(pair):
        mse_path, gan_path = pair
        y_mse, y_gan = read_image(mse_path), read_image(gan_path)
        if y_mse.shape != y_gan.shape:
            raise DesraInputError(f'{gan_path}: size {y_gan.shape[1]}x{y_gan.shape[0]} differs from its MSE-SR '
                                  f'partner {mse_path} ({y_mse.shape[1]}x{y_mse.shape[0]})')
        try:
            result = detector.detect(y_mse, y_gan)
        except DesraInputError:
            raise
        except ValueError as err:  # e.g. an image smaller than the method's window
            raise DesraInputError(f'{gan_path}: {err}')
        paths = outputs(pair)
        if args.save_maps:
            save_npy(paths[1], result.d_map)
            if semantics:
                save_npy(paths[2], result.adjusted)
                write_image(paths[3], palette[result.labels % len(palette)][:, :, ::-1])
        write_mask(paths[0], result.mask)
        return {
            'artifact_fraction': round(result.artifact_fraction, 6),
            'n_regions': result.n_regions,
            'height': int(y_mse.shape[0]),
            'width': int(y_mse.shape[1])
        }

    extra = {
        name: {
            'status': 'error',
            'message': f'{name}: no partner file in {", ".join(folders)}'
        }
        for name, folders in missing.items()
    }
    meta = {
        'command': 'detect',
        'mse': args.mse,
        'gan': args.gan,
        'method': args.method,
        'semantic': backend,
        'seg_config': getattr(segmenter, 'config_path', None),
        'seg_checkpoint': args.seg_checkpoint if semantics else None,
        'class_table': class_weights.source if class_weights is not None else None,
        'segment_input': args.segment_input if semantics else None,
        'threshold': args.threshold,
        'min_area': args.min_area,
        'min_area_ref': args.min_area_ref,
        'numerator': args.numerator,
    }
    if rank == 0:
        for record in extra.values():
            print(f'error: {record["message"]}', file=sys.stderr)
    summary = run_file_jobs(
        pairs,
        key=lambda pair: stem(pair[0]),
        outputs=outputs,
        process=process,
        summary_path=osp.join(args.out, 'summary.json'),
        desc='detect',
        meta=meta,
        extra_records=extra)
    if rank == 0:
        counts = summary['counts']
        print(f'detect: {counts["done"]} done, {counts["skipped"]} skipped, {counts["error"]} failed; '
              f'summary: {osp.join(args.out, "summary.json")}')
    return summary_exit_code(summary)
