"""``desra loop``: the DeSRA loop for your own GAN-SR model, once or continually as new LR images arrive.

For a GAN-SR model and its MSE-SR twin (``--gan-opt`` / ``--mse-opt`` option files, or ``--gan-arch`` +
``--gan-weights`` as ``desra sr`` takes them) and batches of real LR images, each round: SR with both models,
DeSRA-det, pseudo-GT, the DeSRA fine-tune, SR and detection again with the fine-tuned model, the comparison, and
the round's report page. Everything goes to ``--out``; run the same command again to resume.

* ``--input DIR [DIR ...]``: one round per folder; or ``--watch DIR``: the images new in DIR since the last poll
  form the next round's batch, until a file named STOP appears in DIR (or ``--max-rounds``).
* The length of the fine-tune (``--length chosen``, the default): checkpoints every ``--checkpoint-every``
  iterations up to ``--iters`` are scored on a validation split of your own artifact images (``--val-fraction``,
  never trained on); the rule keeps the smallest detected area with an addition rate of at most
  ``--max-addition`` % and detail kept of at least ``--min-detail``. ``--length fixed`` trains ``--iters``
  iterations (the paper: 1000).
* ``--holdback F`` (with ``--train-clean``, either length): a share F of the pool's images without artifacts is
  held out in the validation split too, so that a fine-tuned model that paints artifacts on images it never
  trained on is seen.
* Rounds fine-tune once the pool of images with artifacts holds ``--min-pool`` of them, from the current model; a
  fine-tuned model that gains artifacts on more than ``--forget-tolerance`` % of the images fixed in earlier
  rounds, on more than ``--pool-tolerance`` % of its pool, or on more than ``--max-addition`` % of its validation
  split, or that the rule kept only as its fallback (``--length chosen``, no checkpoint admitted), is rejected and
  the current model kept.
* ``--heldout DIR``: scored before and after every round, never trained on.
* Every accepted model version, with its parent, data, scores and the reason, is in OUT/models/manifest.json;
  serve one with ``desra sr --opt OUT/models/vN/sr.yml``. The report: OUT/report/index.html.

Example (a stock Real-ESRGAN pair; see docs/loop.md)::

    desra loop --gan-opt options/finetune_realesrgan_desra.yml --gan-weights RealESRGAN_x4plus.pth \\
        --netd-weights RealESRGAN_x4plus_netD.pth --mse-arch RRDBNet \\
        --mse-arch-opt num_in_ch=3 num_out_ch=3 num_block=23 --mse-weights RealESRNet_x4plus.pth \\
        --input my_lr --heldout my_heldout_lr --out loop --device cuda

Python API: :mod:`desra_basicsr.jobs.loop`.
"""
import argparse
from typing import Any, Dict

from desra_basicsr.commands import add_setting_arguments, job_command
from desra_basicsr.jobs.loop import LoopSettings
from desra_basicsr.settings import default_of


def _add_model(parser: argparse.ArgumentParser, role: str, title: str) -> None:
    parser.add_argument(f'--{role}-opt', help=f'{title}: BasicSR option file (network_g, path.pretrain_network_g)')
    parser.add_argument(f'--{role}-arch', help=f'{title}: registered architecture, e.g. RRDBNet, SwinIR')
    parser.add_argument(
        f'--{role}-arch-opt',
        nargs='*',
        default=[],
        metavar='KEY=VALUE',
        help=f'{title}: constructor argument of --{role}-arch (VALUE parsed as YAML)')
    parser.add_argument(f'--{role}-weights', help=f'{title}: generator weights (override the option file\'s)')
    parser.add_argument(f'--{role}-param-key', help=f'{title}: checkpoint key (default: params_ema, params, bare)')


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``loop`` sub-command.

    Args:
        subparsers (argparse._SubParsersAction): The ``desra`` sub-parsers.
    """
    parser = subparsers.add_parser(
        'loop',
        help='the DeSRA loop for your own model: detect, fine-tune, check, register (once or continually)',
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    batches = parser.add_mutually_exclusive_group(required=True)
    batches.add_argument('--input', dest='batches', nargs='+', metavar='DIR', help='batch folders, one round each')
    batches.add_argument('--watch', metavar='DIR', help='folder polled for new images (stop: a file DIR/STOP)')
    parser.add_argument('--out', required=True, help='output folder (resumable)')
    _add_model(parser, 'gan', 'GAN-SR model')
    parser.add_argument(
        '--netd-weights',
        help='discriminator of the GAN-SR model (default: none, D starts from scratch; G is held for the '
        'template\'s train.net_d_init_iters)')
    _add_model(parser, 'mse', 'MSE-SR twin')
    parser.add_argument('--template', help='fine-tune option template (default: the GAN-SR family\'s in options/)')
    parser.add_argument('--heldout', help='LR images scored before and after every round, never trained on')
    parser.add_argument(
        '--length',
        choices=('chosen', 'fixed'),
        default=default_of(LoopSettings, 'length'),
        help='chosen: the rule picks the checkpoint on the validation split; fixed: --iters iterations')
    add_setting_arguments(
        parser, LoopSettings, {
            'iters': 'fine-tune iterations (the longest run with --length chosen)',
            'checkpoint_every': 'iterations between the checkpoints the rule scores',
            'val_fraction': 'share of the pool\'s artifact images held out for the rule (--length chosen)',
            'holdback': 'share of the pool\'s images without artifacts held out too, either length (needs '
                        '--train-clean): a candidate that adds artifacts on them is rejected',
            'min_detail': 'rule: least detail kept outside the masks',
            'max_addition': 'largest addition rate on the validation split, percent (the rule\'s; beyond it the '
                            'candidate is rejected)',
            'tie_area': 'rule: area excess (percentage points) over the smallest that still ties; the last of the '
                        'unbroken run of ties is kept',
            'min_pool': 'images with artifacts the pool must hold before a fine-tune',
            'forget_tolerance': 'largest addition rate on images fixed in earlier rounds, percent',
            'pool_tolerance': 'largest addition rate on the pool the model was fine-tuned on, percent',
            'max_rounds': 'stop after this many rounds (0: no limit)',
            'poll_seconds': 'seconds between polls of --watch',
            'seed': 'seed of the first round (round r: seed + r - 1)',
            'tile': 'SR tile size in LR pixels (0: whole images)',
        })
    parser.add_argument('--train-clean', action='store_true', help='also fine-tune on images without artifacts')
    parser.add_argument('--seg-checkpoint', help='SegFormer ADE20K checkpoint: turns semantics on (default: off)')
    parser.add_argument('--seg-config', help='mmseg config of --seg-checkpoint (default: mit-b5 ADE20K 640x640)')
    parser.add_argument('--device', default=default_of(LoopSettings, 'device'), help='cpu, cuda or cuda:N')
    parser.set_defaults(func=job_command('desra_basicsr.jobs.loop', 'LoopSettings', overrides=loop_overrides))


def loop_overrides(args: argparse.Namespace) -> Dict[str, Any]:
    """The settings fields that need parsing: the batch list and the architectures' arguments.

    Args:
        args (argparse.Namespace): Parsed arguments.

    Returns:
        dict: ``batches``, ``gan_arch_opt``, ``mse_arch_opt``.
    """
    from desra_basicsr.commands.sr_cmd import parse_arch_opts
    return {
        'batches': tuple(args.batches or ()),
        'gan_arch_opt': parse_arch_opts(args.gan_arch_opt),
        'mse_arch_opt': parse_arch_opts(args.mse_arch_opt),
    }
