"""``desra detect``: DeSRA-det artifact masks for folders of MSE-SR / GAN-SR outputs paired by file name.

Writes, for each pair ``<stem>``:

* ``OUT/<stem>.png``: uint8 0/255 mask (255 = artifact) of the image size;
* with ``--save-maps``: ``OUT/maps/<stem>_D.npy`` (float32 indicator before the semantic adjustment) and, when
  semantics are on, ``OUT/maps/<stem>_D_adjusted.npy`` and ``OUT/maps/<stem>_seg.png`` (colour label map);
* ``OUT/summary.json``: the settings, and per image ``status`` (done / error), ``artifact_fraction``,
  ``n_regions``, image size, or the error ``message``.

Run it again to resume: finished images are kept. A folder written with other settings or inputs is refused
unless ``--overwrite``. Under ``python -m torch.distributed.run --nproc_per_node=N -m desra_basicsr detect ...``
each rank handles a disjoint share of the pairs (on its own GPU with ``--device cuda``) and rank 0 writes the
summary. Exit code: 0, 1 when some pair failed, 2 for unusable arguments. Python API:
:mod:`desra_basicsr.jobs.detect`.

Every method says what it needs and uses: an option a method ignores (``--threshold`` for the LDL baselines) is
not recorded, so changing it does not refuse the folder. ``--method localizer`` needs no MSE-SR outputs: a
localiser trained with ``desra localizer train`` finds the artifacts from the GAN-SR images alone
(``--localizer-config``, ``--localizer-checkpoint``): artifact where its probability is at least
``--prob-threshold``, holes filled, regions of at most ``--min-area`` pixels dropped; ``--save-maps`` writes the
probability as ``OUT/maps/<stem>_prob.npy``::

    desra detect --method localizer --gan sr/gan --out masks \\
        --localizer-config localizer/localizer_config.py --localizer-checkpoint localizer/localizer.pth
"""
import argparse

from desra_basicsr.commands import add_overwrite_argument, job_command
from desra_basicsr.jobs.detect import METHODS, NUMERATORS, SEGMENT_INPUTS, SEMANTIC_BACKENDS, DetectSettings
from desra_basicsr.settings import default_of


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``detect`` sub-command.

    Args:
        subparsers (argparse._SubParsersAction): The ``desra`` sub-parsers.
    """
    parser = subparsers.add_parser(
        'detect',
        help='detect GAN-SR artifacts against MSE-SR outputs (DeSRA-det)',
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--mse', help='folder of MSE-SR outputs (every method but localizer)')
    parser.add_argument('--gan', required=True, help='folder of GAN-SR outputs (same file stems)')
    parser.add_argument('--out', required=True, help='output folder for masks, maps and summary.json')
    parser.add_argument(
        '--method',
        default=default_of(DetectSettings, 'method'),
        choices=sorted(METHODS),
        help='detection method: ' + '; '.join(f'{name}: {m.description}' for name, m in sorted(METHODS.items())))
    parser.add_argument(
        '--semantic',
        choices=SEMANTIC_BACKENDS,
        help='segmenter backend (default: mmseg when --seg-checkpoint is given, otherwise none = all weights 1)')
    parser.add_argument('--seg-config', help='mmseg config (default: SegFormer mit-b5 ADE20K 640x640)')
    parser.add_argument('--seg-checkpoint', help='mmseg checkpoint (.pth) matching --seg-config')
    parser.add_argument(
        '--class-table',
        help='class weight table, matched to the model\'s classes by name (default: the DeSRA release)')
    parser.add_argument(
        '--segment-input',
        choices=SEGMENT_INPUTS,
        default=default_of(DetectSettings, 'segment_input'),
        help='image to segment (release: gan)')
    threshold, min_area = default_of(DetectSettings, 'threshold'), default_of(DetectSettings, 'min_area')
    parser.add_argument('--threshold', type=float, default=threshold, help=f'artifact where map < this ({threshold})')
    parser.add_argument('--min-area', type=int, default=min_area, help=f'drop regions with area <= this ({min_area})')
    parser.add_argument(
        '--min-area-ref',
        type=int,
        help='image area (pixels) --min-area is meant for; scales it by H*W/ref for each image (default: no scaling)')
    parser.add_argument(
        '--numerator',
        choices=NUMERATORS,
        default=default_of(DetectSettings, 'numerator'),
        help='indicator numerator: +C or not (paper: eq. 7 without +C; it flags flat areas even of identical images)')
    parser.add_argument('--device', default=default_of(DetectSettings, 'device'), help='cpu, cuda or cuda:N')
    parser.add_argument('--save-maps', action='store_true', help='also save the method\'s maps and the segmentation')
    parser.add_argument('--localizer-config', help='--method localizer: localizer_config.py')
    parser.add_argument('--localizer-checkpoint', help='--method localizer: localizer.pth')
    prob_threshold = default_of(DetectSettings, 'prob_threshold')
    parser.add_argument(
        '--prob-threshold',
        type=float,
        default=prob_threshold,
        help=f'--method localizer: artifact where the probability is >= this ({prob_threshold})')
    add_overwrite_argument(parser)
    parser.set_defaults(func=job_command('desra_basicsr.jobs.detect', 'DetectSettings'))
