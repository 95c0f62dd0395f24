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
gives the untiled result when the pad covers the network's receptive field. Existing outputs are skipped
(resume by running the same command again); outputs are written atomically. The exit code is 1 when some image
failed, 2 for unusable arguments.
"""
import argparse
import os.path as osp
import sys
from typing import Any, Dict, List, Optional


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
    parser.add_argument('--tile', type=int, default=0, help='tile size in LR pixels (0: whole images)')
    parser.add_argument('--tile-pad', type=int, default=10, help='overlapping context around each tile, LR pixels')
    parser.add_argument('--device', default='auto', help='auto, cpu, cuda or cuda:N (auto: cuda when available)')
    parser.add_argument('--fp16', action='store_true', help='half precision (CUDA only)')
    parser.set_defaults(func=run)


def parse_arch_opts(items: List[str]) -> Dict[str, Any]:
    """Parse ``KEY=VALUE`` strings, each VALUE as YAML.

    Args:
        items (list[str]): The ``--arch-opt`` strings.

    Returns:
        dict: Constructor arguments.

    Raises:
        DesraInputError: For an item without ``=`` or with an unparsable value.
    """
    import yaml

    from desra_basicsr.errors import DesraInputError
    kwargs: Dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition('=')
        if not sep or not key:
            raise DesraInputError(f'--arch-opt {item}: expected KEY=VALUE')
        try:
            kwargs[key] = yaml.safe_load(value)
        except yaml.YAMLError as err:
            raise DesraInputError(f'--arch-opt {item}: value is not valid YAML ({err})') from err
    return kwargs


def run(args: argparse.Namespace) -> int:
    """Run ``desra sr``.

    Args:
        args (argparse.Namespace): Parsed arguments.

    Returns:
        int: 0 if every image succeeded, 1 if some failed, 2 for unusable arguments.
    """
    from desra_basicsr.errors import DesraInputError
    from desra_basicsr.file_jobs import run_file_jobs, summary_exit_code
    from desra_basicsr.image_io import list_images, read_image, stem, write_image
    from desra_basicsr.inference import SRInferencer, build_generator, generator_from_options, size_multiple

    try:
        if args.opt:
            if args.arch_opt:
                raise DesraInputError('--arch-opt: only with --arch (--opt takes network_g from the option file)')
            net, multiple = generator_from_options(args.opt, args.weights, args.param_key)
        else:
            if not args.weights:
                raise DesraInputError('--weights: required with --arch')
            kwargs = parse_arch_opts(args.arch_opt)
            net = build_generator(args.arch, kwargs, args.weights, args.param_key)
            multiple = size_multiple(args.arch, kwargs)
        inferencer = SRInferencer(
            net, device=args.device, tile=args.tile, tile_pad=args.tile_pad, fp16=args.fp16, size_multiple=multiple)
        names = list_images(args.input)
        if not names:
            raise DesraInputError(f'{args.input}: no images found')
        seen: Dict[str, str] = {}
        for name in names:
            if stem(name) in seen:
                raise DesraInputError(f'{osp.join(args.input, name)}: ambiguous, {seen[stem(name)]} has the same '
                                      'stem and both would be written to the same output')
            seen[stem(name)] = name
    except DesraInputError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2

    def output(name: str) -> str:
        return osp.join(args.out, f'{stem(name)}.png')

    def process(name: str) -> Optional[Dict[str, Any]]:
        img = read_image(osp.join(args.input, name))
        out = inferencer.enhance(img)
        write_image(output(name), out)
        return {'lr_size': [int(img.shape[1]), int(img.shape[0])], 'sr_size': [int(out.shape[1]), int(out.shape[0])]}

    meta = {
        'command': 'sr',
        'input': args.input,
        'opt': args.opt,
        'arch': args.arch,
        'weights': args.weights,
        'tile': args.tile,
        'tile_pad': args.tile_pad,
        'device': str(inferencer.device),
        'fp16': args.fp16,
    }
    summary = run_file_jobs(
        names,
        key=stem,
        outputs=lambda name: [output(name)],
        process=process,
        summary_path=osp.join(args.out, 'summary.json'),
        desc='sr',
        meta=meta)
    counts = summary['counts']
    print(f'sr: {counts["done"]} done, {counts["skipped"]} skipped, {counts["error"]} failed; '
          f'outputs in {args.out}')
    return summary_exit_code(summary)
