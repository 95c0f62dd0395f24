"""``desra zoo synth``: paint synthetic artifacts with exact masks into clean HR photos (the artifact zoo).

Each artifact class models what GAN-SR and other generators produce: ``texture`` (noise-like texture over flat
areas), ``grid`` (checkerboard of period 2-4 px), ``halo`` (over-sharpening halos and ringing), ``blotch`` (colour
blotches), ``paste`` (texture pasted from elsewhere in the photo) and ``tone`` (a mild contrast, brightness and colour
shift over the whole photo); docs/zoo.md shows each with its strength range and default. Example::

    desra zoo synth --hr hr --out zoo/synth --per-image 2
    desra zoo synth --hr hr --out zoo/grids --classes grid,halo --strength grid=20,halo=2 --shape blob --area 0.1

For every photo ``<hrstem>``, class and ``k < --per-image`` it writes ``OUT/img/<hrstem>__<class>__<k>.png`` (the
photo with the artifact), ``OUT/mask/<hrstem>__<class>__<k>.png`` (its exact 0/255 mask; every pixel outside it is
the photo's) and ``OUT/summary.json`` (settings; per item ``class``, ``target`` = the clean photo, ``strength``,
``area``), which ``desra localizer train`` and the restorer read. Every item has its own seed, made from ``--seed``
and its name, so a resumed run or one under ``python -m torch.distributed.run`` paints the same images. Resumable;
other settings are refused unless ``--overwrite``. Exit code: 0, 1 when a photo could not be read, 2 for unusable
arguments (an unknown class, a strength out of its range, an empty --hr folder). Python API:
:mod:`desra_basicsr.jobs.zoo_synth`.
"""
import argparse

from desra_basicsr.commands import add_action_parser, add_overwrite_argument, add_setting_arguments, job_command


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``zoo`` sub-command (with its ``synth`` action).

    Args:
        subparsers (argparse._SubParsersAction): The ``desra`` sub-parsers.
    """
    from desra_basicsr.jobs.zoo_synth import SHAPE_CHOICES, ZooSynthSettings
    from desra_basicsr.settings import default_of

    synth = add_action_parser(subparsers, 'zoo', 'build the artifact zoo: synthetic artifacts with exact masks',
                              'synth', 'paint synthetic artifacts into clean HR photos', __doc__)
    synth.add_argument('--hr', required=True, help='folder of clean HR photos')
    synth.add_argument('--out', required=True, help='output folder (img/, mask/, summary.json)')
    synth.add_argument(
        '--classes', default=None, help='comma-separated artifact classes (default: all; docs/zoo.md lists them)')
    add_setting_arguments(synth, ZooSynthSettings, {'per_image': 'artifacts per photo and class'})
    synth.add_argument(
        '--strength',
        default=None,
        help='one number for every class, or NAME=S,NAME=S for some classes, each within its class\'s range '
        '(default: each class\'s default)')
    synth.add_argument(
        '--area', type=float, default=None, help='region area as a fraction of the photo, in (0, 1] (default: each '
        'class\'s default: 0.05, tone 1)')
    synth.add_argument(
        '--shape',
        choices=SHAPE_CHOICES,
        default=default_of(ZooSynthSettings, 'shape'),
        help='region shape; random draws one per artifact (default random)')
    add_setting_arguments(synth, ZooSynthSettings,
                          {'seed': 'seed of the run; each artifact\'s seed is made from it and the item\'s name'})
    add_overwrite_argument(synth)
    synth.set_defaults(func=job_command('desra_basicsr.jobs.zoo_synth', 'ZooSynthSettings'))
