"""``desra restore``: remove generative artifacts with a DiffGAR restorer; ``desra restore train``: train one.

Restore (blind by default; ``--class`` for non-blind, ``--guidance`` for classifier-free guidance)::

    desra restore --input sr/gan --out restored      # the committed demo restorer
    desra restore --input sr/gan --out restored --checkpoint experiments/restore_demo/restorer.pth
    desra restore --input sr/gan --out restored --class texture --guidance 2 --steps 30   # a class of the demo restorer
    desra restore --input sr/gan --out restored --checkpoint restorer.pth --masks masks   # only inside the masks

Writes ``OUT/NAME.png`` per image and ``OUT/summary.json``; run the same command again to resume. Images of any
size are restored in overlapping tiles (``--tile``, ``--overlap``) without seams. With ``--masks`` (``desra detect``
or localiser masks, same stems), only the inside of each mask changes (feathered over ``--feather`` pixels);
``--outside S`` also applies the whole-image restoration outside the masks at strength ``S``, and ``--passes N``
restores the inside of the masks N times, each pass on the last one's output.

Train (an option file listing the artifact zoo's samples, the U-Net and the schedule; see docs/restore.md)::

    desra restore train -opt options/restore/demo.yml --out experiments/restore_demo

Writes ``OUT/restorer.pth``, ``OUT/checkpoints/`` and ``OUT/summary.json``; run it again to resume an interrupted
training. Under ``python -m torch.distributed.run`` both train (DistributedDataParallel) and restore (images
sharded) on every rank. Exit code: 0, 1 when an image or the training failed, 2 for unusable arguments (an unknown
class, guidance below 1, a checkpoint of another kind, an empty input folder ...). Python API:
:mod:`desra_basicsr.jobs.restore`, :mod:`desra_basicsr.jobs.restore_train`.
"""
import argparse

from desra_basicsr.commands import add_overwrite_argument, finished_item_on_rank0, job_command


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``restore`` sub-command (with its optional ``train`` action).

    Args:
        subparsers (argparse._SubParsersAction): The ``desra`` sub-parsers.
    """
    from desra_basicsr.jobs.restore import RestoreSettings
    from desra_basicsr.settings import default_of

    def default(name: str):
        return default_of(RestoreSettings, name)

    parser = subparsers.add_parser(
        'restore',
        help='remove generative artifacts of any model with a diffusion restorer (DiffGAR); `restore train` trains one',
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--input', help='folder of images with artifacts (required to restore)')
    parser.add_argument('--out', help='output folder (required)')
    parser.add_argument('--checkpoint', default=default('checkpoint'),
                        help='restorer checkpoint, restorer.pth of `desra restore train` (default: the demo restorer '
                        'trained on the bundled corpus, experiments/pretrained_models/restore_demo.pth)')
    parser.add_argument('--class', dest='cls', default=None, metavar='NAME',
                        help='artifact class the restorer was trained on: non-blind restoration (default: blind)')
    parser.add_argument('--guidance', type=float, default=default('guidance'),
                        help='classifier-free guidance between --class and blind, >= 1; 1 uses the class alone '
                        f'({default("guidance")})')
    parser.add_argument('--steps', type=int, default=default('steps'), help=f'DDIM steps ({default("steps")})')
    parser.add_argument('--seed', type=int, default=default('seed'), help=f'seed of the noise ({default("seed")})')
    parser.add_argument('--masks', default=None, help='folder of artifact masks (same stems): restore only inside '
                        'them; every pixel outside stays as it was')
    parser.add_argument('--feather', type=int, default=default('feather'),
                        help=f'feather of the masks inwards, pixels; 0 for hard edges ({default("feather")})')
    parser.add_argument('--outside', type=float, default=default('outside'),
                        help='with --masks: restore the whole image and apply it at this strength outside the masks, '
                        f'0 to 1 ({default("outside")}: every pixel outside stays as it was)')
    parser.add_argument('--passes', type=int, default=default('passes'),
                        help='with --masks: restore the inside of the masks this many times, each pass on the last '
                        f'one\'s output ({default("passes")}; docs/benchmarks/restore.md measures 2)')
    parser.add_argument('--tile', type=int, default=None,
                        help='tile side in pixels (default: the training crop of the checkpoint)')
    parser.add_argument('--overlap', type=int, default=None, help='tile overlap in pixels (default: a quarter tile)')
    parser.add_argument('--device', default=default('device'), help='auto, cpu, cuda or cuda:N (auto)')
    add_overwrite_argument(parser)
    parser.set_defaults(func=_restore_or_refuse(parser, job_command('desra_basicsr.jobs.restore', 'RestoreSettings')))

    actions = parser.add_subparsers(dest='action', metavar='[train]', title='training')
    train = actions.add_parser('train', help='train a restorer from an option file (desra restore train -opt FILE)',
                               description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument('-opt', '--options', required=True, metavar='FILE',
                       help='option file, e.g. options/restore/demo.yml (data, model, diffusion, train)')
    train.add_argument('--out', required=True, help='output folder (restorer.pth, checkpoints/, summary.json)')
    train.add_argument('--device', default=default('device'), help='auto, cpu, cuda or cuda:N (auto)')
    add_overwrite_argument(train)
    train.set_defaults(func=job_command('desra_basicsr.jobs.restore_train', 'RestoreTrainSettings', report_training))


def _restore_or_refuse(parser: argparse.ArgumentParser, restore):
    """The restore command's ``func``: refuse a missing required option (exit 2) before running the job."""

    def run(args: argparse.Namespace) -> int:
        missing = [f'--{name}' for name in ('input', 'out') if getattr(args, name) is None]
        if missing:
            parser.error(f'{", ".join(missing)} required (or `desra restore train -opt FILE --out DIR`)')
        return restore(args)

    return run


def report_training(result, args: argparse.Namespace) -> None:
    """Print the counts and what the training wrote (rank 0 only under torchrun)."""
    from desra_basicsr.jobs.restore_train import ITEM
    record = finished_item_on_rank0(result, ITEM)
    if record:
        print(f'restorer: {record["samples"]} samples of classes {", ".join(record["classes"])}, {record["iters"]} '
              f'iterations in {record["seconds"]} s ({record["space"]} space); checkpoint {record["checkpoint"]}')
