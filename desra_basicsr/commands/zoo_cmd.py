"""``desra zoo synth`` and ``desra zoo rain``: the artifact zoo's synthetic data.

``desra zoo synth`` paints synthetic artifacts with exact masks into clean HR photos.

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

``desra zoo rain`` adds synthetic rain streaks to clean photos, the inputs of the cross-domain deraining test
(docs/deraining.md): sparse drops, blurred (``--blur``), smeared into streaks of ``--length`` pixels tilted ``--angle``
degrees from the vertical, ``--density`` drops per pixel, screen-blended at ``--intensity``; each photo jitters the
parameters around the run's. Example::

    desra zoo rain --hr hr --out rain --angle 30 --density 0.006

It writes ``OUT/img/<photo>.png`` (the same file names as ``--hr``, so BasicSR's ``PairedImageDataset`` pairs them)
and ``OUT/summary.json`` (settings; per photo its drawn ``rain`` parameters and ``target``). Resumable, seeded per
photo; other settings are refused unless ``--overwrite``. Exit code: 0, 1 when a photo could not be read, 2 for
unusable arguments (a value out of its range, an empty --hr folder). Python API: :mod:`desra_basicsr.jobs.zoo_rain`.
"""
import argparse

from desra_basicsr.commands import add_action_parsers, add_overwrite_argument, add_setting_arguments, job_command

#: ``desra zoo synth --help`` and ``desra zoo rain --help``: each action's own part of the docstring.
SYNTH_DESCRIPTION = (__doc__ or '').partition('\n\n``desra zoo rain``')[0].partition('\n\n')[2] + '\n'
RAIN_DESCRIPTION = ''.join((__doc__ or '').partition('``desra zoo rain`` adds')[1:])


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``zoo`` sub-command (with its ``synth`` and ``rain`` actions).

    Args:
        subparsers (argparse._SubParsersAction): The ``desra`` sub-parsers.
    """
    from desra_basicsr.jobs.zoo_rain import ZooRainSettings
    from desra_basicsr.jobs.zoo_synth import SHAPE_CHOICES, ZooSynthSettings
    from desra_basicsr.settings import default_of

    synth, rain = add_action_parsers(subparsers, 'zoo', 'build the artifact zoo: synthetic artifacts and rain',
                                     [('synth', 'paint synthetic artifacts into clean HR photos'),
                                      ('rain', 'add synthetic rain streaks to clean photos (deraining test)')],
                                     __doc__)
    synth.description, rain.description = SYNTH_DESCRIPTION, RAIN_DESCRIPTION
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

    rain.add_argument('--hr', required=True, help='folder of clean photos')
    rain.add_argument('--out', required=True, help='output folder (img/, summary.json)')
    add_setting_arguments(
        rain, ZooRainSettings, {
            'angle': 'tilt of the streaks from the vertical, degrees, in [-60, 60]',
            'length': 'streak length, pixels, in [2, 200]',
            'density': 'fraction of pixels that start a drop, in [0.0001, 0.05]',
            'blur': 'Gaussian blur of the drops, pixels, in [0, 5]',
            'intensity': 'brightness of a streak\'s core, in [0.05, 1]',
            'seed': 'seed of the run; each photo\'s seed is made from it and its name',
        })
    add_overwrite_argument(rain)
    rain.set_defaults(func=job_command('desra_basicsr.jobs.zoo_rain', 'ZooRainSettings'))
