"""``desra sr``: run a BasicSR generator over a folder of LR images (the MSE-SR, GAN-SR and fine-tuned outputs).

The generator comes from a BasicSR option file (``network_g`` and ``path.pretrain_network_g`` /
``path.param_key_g``, as in a training or test option file) or from ``--arch`` with ``--arch-opt KEY=VALUE``
constructor arguments and ``--weights``. With no ``--param-key``, ``params_ema`` is used when the checkpoint has
it, else ``params``, else the file is taken as a bare state dict. Examples::

    desra sr --opt options/demo_train_gan.yml --weights experiments/pretrained_models/demo_gan_x4.pth \\
        --input demo_data/heldout_lr --out results/gan
    desra sr --arch RRDBNet --arch-opt num_in_ch=3 num_out_ch=3 num_feat=64 num_block=23 num_grow_ch=32 \\
        --weights RealESRGAN_x4plus.pth --input lr/ --out gan/ --tile 256 --device cuda --fp16

Writes ``OUT/<stem>.png`` for each input image (the file stems detection pairs by) and ``OUT/summary.json``.
Large images run in ``--tile`` x ``--tile`` LR tiles with ``--tile-pad`` pixels of overlapping context, which
gives the untiled result when the pad covers the network's receptive field. ``--fp16`` runs under
``torch.autocast`` (CUDA). ``--colour-sigma S`` gives each output its LR input's low frequencies (Gaussian of ``S``
SR pixels), which removes the colour drift GAN-SR models show. Finished outputs are kept when the same command runs
again (resume); other weights, options or inputs are refused unless ``--overwrite``. Under ``python -m
torch.distributed.run`` each rank takes a share of the images and its own GPU (``--device cuda:N``: ``cuda:(N +
LOCAL_RANK) % GPUs``). The exit code is 1 when some image failed, 2 for unusable arguments.
Python API: :mod:`desra_basicsr.jobs.sr`.
"""
import argparse
from typing import Any, Dict, List

from desra_basicsr.commands import add_overwrite_argument, job_command
from desra_basicsr.jobs.sr import SRSettings
from desra_basicsr.settings import default_of


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``sr`` sub-command.

    Args:
        subparsers (argparse._SubParsersAction): The ``desra`` sub-parsers.
    """
    parser = subparsers.add_parser(
        'sr',
        help='super-resolve a folder of LR images with a BasicSR generator',
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('--opt', help='BasicSR option file (network_g, path.pretrain_network_g, path.param_key_g)')
    source.add_argument('--arch', help='registered architecture name, e.g. RRDBNet, SRVGGNetCompact, SwinIR')
    parser.add_argument(
        '--arch-opt',
        nargs='+',
        action='extend',
        default=[],
        metavar='KEY=VALUE',
        help='constructor argument of --arch (VALUE parsed as YAML: 4, true, [6, 6])')
    parser.add_argument('--weights', help='generator checkpoint (overrides path.pretrain_network_g of --opt)')
    parser.add_argument('--param-key', help='checkpoint key (default: params_ema, else params, else bare dict)')
    parser.add_argument('--input', required=True, help='folder of LR images')
    parser.add_argument('--out', required=True, help='output folder (OUT/<stem>.png, OUT/summary.json)')
    parser.add_argument(
        '--tile', type=int, default=default_of(SRSettings, 'tile'), help='tile size in LR pixels (0: whole images)')
    parser.add_argument(
        '--tile-pad',
        type=int,
        default=default_of(SRSettings, 'tile_pad'),
        help='overlapping context around each tile, LR pixels')
    parser.add_argument(
        '--device', default=default_of(SRSettings, 'device'), help='cpu, cuda or cuda:N, or auto (cuda when available)')
    parser.add_argument('--fp16', action='store_true', help='half precision through torch.autocast (CUDA only)')
    parser.add_argument(
        '--colour-sigma',
        type=float,
        default=default_of(SRSettings, 'colour_sigma'),
        help='colour fix: each output takes its LR input\'s low frequencies below this Gaussian sigma, SR pixels '
        '(0: none; 8 is two LR pixels at x4)')
    add_overwrite_argument(parser)
    parser.set_defaults(func=job_command('desra_basicsr.jobs.sr', 'SRSettings', overrides=arch_options))


def parse_arch_opts(items: List[str]) -> Dict[str, Any]:
    """Parse ``KEY=VALUE`` strings, each VALUE as YAML.

    Args:
        items (list[str]): The ``--arch-opt`` strings.

    Returns:
        dict: Constructor arguments.

    Raises:
        DesraSettingsError: For an item without ``=`` or with an unparsable value.
    """
    import yaml

    from desra_basicsr.errors import DesraSettingsError
    kwargs: Dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition('=')
        if not sep or not key:
            raise DesraSettingsError(f'--arch-opt {item}: expected KEY=VALUE')
        try:
            kwargs[key] = yaml.safe_load(value)
        except yaml.YAMLError as err:
            raise DesraSettingsError(f'--arch-opt {item}: value is not valid YAML ({err})') from err
    return kwargs


def arch_options(args: argparse.Namespace) -> Dict[str, Any]:
    """The settings field parsed from ``--arch-opt`` (see :func:`parse_arch_opts`).

    Args:
        args (argparse.Namespace): Parsed arguments.

    Returns:
        dict: ``{'arch_opt': ...}``.
    """
    return {'arch_opt': parse_arch_opts(args.arch_opt)}
