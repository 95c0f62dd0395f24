"""``desra localizer train``: train the artifact localiser on images with artifact masks, from several sources.

The localiser (Zhao, "The Cross-Domain Application Research of a Super-Resolution Semantic Artifact Rectification
Method") is a two-class (clean / artifact) mmsegmentation model that finds artifacts from the GAN-SR image alone,
with no MSE-SR twin. Training goes through mmsegmentation's own training (mmengine ``Runner``) with a model from the
configs shipped in the mmsegmentation wheel (``--arch``: DeepLabV3+ ResNet-18 or ResNet-50, SegFormer mit-b0,
Fast-SCNN), from scratch (nothing is downloaded) or from ``--init-checkpoint``. Example::

    desra detect --mse sr/mse --gan sr/gan --out masks
    desra localizer train --gan sr/gan --masks masks --out localizer --iters 2000
    desra detect --method localizer --gan other_sr/gan --out other_masks \\
        --localizer-config localizer/localizer_config.py --localizer-checkpoint localizer/localizer.pth

Several sources at once, each ``--source KIND PATH [MASKS] [weight=W]``: ``synthetic DIR`` (a ``desra zoo synth``
folder: exact masks), ``generator IMAGES MASKS`` (a generator's outputs and their DeSRA-det masks), ``clean DIR``
(artifact-free images, trained on as all clean). A source is drawn with probability W / (sum of the weights; 1 by
default), then one of its images; ``--gan``/``--masks`` and ``--clean`` are one generator and one clean source of
weight 1::

    desra localizer train --out zoo_localizer --source synthetic zoo/synth weight=2 \\
        --source generator zoo/gan_a/sr zoo/gan_a/masks --source generator zoo/gan_b/sr zoo/gan_b/masks \\
        --source clean zoo/gan_a/pseudo_gt weight=0.5

Writes ``OUT/localizer_config.py`` and ``OUT/localizer.pth`` (what ``desra detect --method localizer`` and
``desra fuse`` load), ``OUT/work_dir/`` (mmengine logs, the latest checkpoint) and ``OUT/summary.json`` (settings,
training time, final loss). Run the same command again to resume an interrupted training from its latest
checkpoint (``--checkpoint-interval``); other settings are refused unless ``--overwrite``. Every option, the
training data and ``--init-checkpoint`` are checked before training starts. Exit code: 0, 1 when training failed,
2 for unusable arguments. Python API: :mod:`desra_basicsr.jobs.localizer_train`.
"""
import argparse

from desra_basicsr.commands import (add_action_parsers, add_mask_channel_argument, add_overwrite_argument,
                                    finished_item_on_rank0, job_command)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``localizer`` sub-command (with its ``train`` action).

    Args:
        subparsers (argparse._SubParsersAction): The ``desra`` sub-parsers.
    """
    from desra_basicsr.jobs.localizer_train import (MAX_CROP_SIZE, MAX_SCALE, MIN_CROP_SIZE, MIN_SCALE,
                                                    LocalizerTrainSettings)
    from desra_basicsr.localizer.config import ARCHS
    from desra_basicsr.settings import default_of

    def default(name: str):
        return default_of(LocalizerTrainSettings, name)

    train, = add_action_parsers(
        subparsers, 'localizer', 'train the artifact localiser (finds GAN-SR artifacts without the MSE-SR twin)',
        [('train', 'train on images with artifact masks (synthetic, generators) and clean images')], __doc__)
    train.add_argument('--gan', default=None, help='folder of GAN-SR images (with --masks: one generator source)')
    train.add_argument('--masks', default=None, help='folder of DeSRA-det masks of --gan (desra detect output)')
    train.add_argument('--out', required=True, help='output folder (config, checkpoint, work_dir, summary.json)')
    train.add_argument(
        '--clean',
        default=None,
        help='folder of artifact-free images trained on as all clean, e.g. the DeSRA pseudo-GT of --gan '
        '(desra pseudo-gt): the same content without the painted texture (one clean source)')
    train.add_argument(
        '--source',
        action='append',
        nargs='+',
        default=None,
        metavar='ARG',
        help='a training source, repeatable: KIND PATH [MASKS] [weight=W] with KIND synthetic DIR (desra zoo synth '
        'folder), generator IMAGES MASKS, or clean DIR; drawn with probability W / sum of the weights (W: 1)')
    train.add_argument('--arch', choices=sorted(ARCHS), default=default('arch'), help=f'model ({default("arch")})')
    train.add_argument('--iters', type=int, default=default('iters'), help=f'training iterations ({default("iters")})')
    train.add_argument(
        '--batch-size', type=int, default=default('batch_size'), help=f'images per iteration ({default("batch_size")})')
    train.add_argument(
        '--crop-size',
        type=int,
        default=default('crop_size'),
        help=f'side of the random crops and of the inference windows, {MIN_CROP_SIZE}-{MAX_CROP_SIZE} '
        f'({default("crop_size")})')
    train.add_argument('--lr', type=float, default=default('lr'), help=f'AdamW learning rate ({default("lr")})')
    train.add_argument('--seed', type=int, default=default('seed'), help=f'random seed ({default("seed")})')
    train.add_argument(
        '--num-workers',
        type=int,
        default=default('num_workers'),
        help=f'data loading processes, 0 loads in the main process ({default("num_workers")})')
    train.add_argument(
        '--init-checkpoint',
        default=None,
        help='mmseg checkpoint initialising the weights of matching names and shapes (default: from scratch)')
    train.add_argument(
        '--artifact-weight',
        type=float,
        default=None,
        help='cross-entropy weight of the artifact class, the clean class weighing 1 (default: the square root of '
        'the ratio of clean to artifact pixels training draws, each source by its weight, at most 10)')
    train.add_argument(
        '--scales',
        type=float,
        nargs='+',
        default=list(default('scales')),
        metavar='S',
        help=f'factors an image is rescaled by before cropping, one drawn per image, each in {MIN_SCALE:g}-'
        f'{MAX_SCALE:g} (1: none; mmseg\'s configs use 0.5-2)')
    train.add_argument(
        '--cat-max-ratio',
        type=float,
        default=default('cat_max_ratio'),
        help='largest share of one class in a random crop, in (0, 1]; mmseg\'s RandomCrop retries up to 10 crops '
        f'(mmseg\'s configs: 0.75; default {default("cat_max_ratio")}: any crop)')
    train.add_argument(
        '--photometric',
        action='store_true',
        help='mmseg\'s PhotoMetricDistortion of the crops (brightness, contrast, saturation, hue)')
    train.add_argument(
        '--edge-crops',
        action='store_true',
        help='centre the random crops uniformly over the image, so that its edges (where a padding artifact sits) '
        'are in a crop about half as often as its middle; default: mmseg\'s RandomCrop, whose uniform offsets put '
        'an edge pixel in about 1 crop in (side - crop + 1)')
    train.add_argument(
        '--checkpoint-interval',
        type=int,
        default=default('checkpoint_interval'),
        help=f'iterations between the checkpoints an interrupted run resumes from ({default("checkpoint_interval")})')
    add_mask_channel_argument(train)
    add_overwrite_argument(train)
    train.set_defaults(
        func=job_command('desra_basicsr.jobs.localizer_train', 'LocalizerTrainSettings', report, overrides=_sources))


def _sources(args: argparse.Namespace) -> dict:
    """The ``sources`` setting from the ``--source`` options (refused ones exit with 2)."""
    from desra_basicsr.jobs.localizer_sources import parse_source
    return {'sources': tuple(parse_source(tokens) for tokens in args.source or [])}


def report(result, args: argparse.Namespace) -> None:
    """Print the counts and what the training wrote (rank 0 only under torchrun)."""
    from desra_basicsr.jobs.localizer_train import ITEM
    record = finished_item_on_rank0(result, ITEM)
    if record:
        print(f'localizer: {record["images"]} images, {record["iters"]} iterations in {record["seconds"]} s; '
              f'config {record["config"]}, checkpoint {record["checkpoint"]}')
