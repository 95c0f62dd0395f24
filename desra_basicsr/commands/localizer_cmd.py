"""``desra localizer train``: train the artifact localiser on GAN-SR images and their DeSRA-det masks.

The localiser (Zhao, "The Cross-Domain Application Research of a Super-Resolution Semantic Artifact Rectification
Method") is a two-class (clean / artifact) mmsegmentation model that finds artifacts from the GAN-SR image alone,
with no MSE-SR twin. Training goes through mmsegmentation's own training (mmengine ``Runner``) with a model from the
configs shipped in the mmsegmentation wheel (``--arch``: DeepLabV3+ ResNet-18 or ResNet-50, SegFormer mit-b0),
from scratch (nothing is downloaded) or from ``--init-checkpoint``. Example::

    desra detect --mse sr/mse --gan sr/gan --out masks
    desra localizer train --gan sr/gan --masks masks --out localizer --iters 2000
    desra detect --method localizer --gan other_sr/gan --out other_masks \\
        --localizer-config localizer/localizer_config.py --localizer-checkpoint localizer/localizer.pth

Writes ``OUT/localizer_config.py`` and ``OUT/localizer.pth`` (what ``desra detect --method localizer`` and
``desra fuse`` load), ``OUT/work_dir/`` (mmengine logs, the latest checkpoint) and ``OUT/summary.json`` (settings,
training time, final loss). Run the same command again to resume an interrupted training from its latest
checkpoint (``--checkpoint-interval``); other settings are refused unless ``--overwrite``. Every option, the
training data and ``--init-checkpoint`` are checked before training starts. Exit code: 0, 1 when training failed,
2 for unusable arguments. Python API: :mod:`desra_basicsr.jobs.localizer_train`.
"""
import argparse
import os

from desra_basicsr.commands import add_action_parser, add_overwrite_argument, describe_on_rank0, job_command


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``localizer`` sub-command (with its ``train`` action).

    Args:
        subparsers (argparse._SubParsersAction): The ``desra`` sub-parsers.
    """
    from desra_basicsr.jobs.localizer_train import MAX_CROP_SIZE, MIN_CROP_SIZE, LocalizerTrainSettings
    from desra_basicsr.localizer.config import ARCHS
    from desra_basicsr.settings import default_of

    def default(name: str):
        return default_of(LocalizerTrainSettings, name)

    train = add_action_parser(subparsers, 'localizer',
                              'train the artifact localiser (finds GAN-SR artifacts without the MSE-SR twin)', 'train',
                              'train on GAN-SR images and DeSRA-det masks', __doc__)
    train.add_argument('--gan', required=True, help='folder of GAN-SR images')
    train.add_argument('--masks', required=True, help='folder of DeSRA-det masks (desra detect output, same stems)')
    train.add_argument('--out', required=True, help='output folder (config, checkpoint, work_dir, summary.json)')
    train.add_argument(
        '--clean',
        default=None,
        help='folder of artifact-free images trained on as all clean, e.g. the DeSRA pseudo-GT of --gan '
        '(desra pseudo-gt): the same content without the painted texture')
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
        'the ratio of clean to artifact pixels in the masks, at most 10)')
    train.add_argument(
        '--checkpoint-interval',
        type=int,
        default=default('checkpoint_interval'),
        help=f'iterations between the checkpoints an interrupted run resumes from ({default("checkpoint_interval")})')
    add_overwrite_argument(train)
    train.set_defaults(func=job_command('desra_basicsr.jobs.localizer_train', 'LocalizerTrainSettings', report))


def report(result, args: argparse.Namespace) -> None:
    """Print the counts and what the training wrote (rank 0 only under torchrun)."""
    from desra_basicsr.jobs.localizer_train import ITEM
    describe_on_rank0(result)
    record = result.items.get(ITEM, {})
    if record.get('status') == 'done' and os.environ.get('RANK', '0') == '0':
        print(f'localizer: {record["images"]} images, {record["iters"]} iterations in {record["seconds"]} s; '
              f'config {record["config"]}, checkpoint {record["checkpoint"]}')
