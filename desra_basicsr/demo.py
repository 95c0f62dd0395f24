"""The whole DeSRA loop on the bundled real-photo corpus with the project-trained demo models (``desra demo``).

It follows the paper's protocol (section 4.1): the GAN-SR model is fine-tuned on one set of real LR photos (the
*fine-tune set*, ``demo_data/finetune_lr/``) and judged on photos the fine-tune never saw (the *held-out set*,
``demo_data/heldout_lr/``); see :mod:`desra_basicsr.demo_corpus` for the corpus and its split.

The demo is ``desra loop`` (:mod:`desra_basicsr.jobs.loop`) with one preset (:func:`loop_settings`): the fine-tune
set is the one batch, the held-out set is ``heldout``, and the recipe is the fixed length of ``--iters`` iterations
(500) from ``options/demo_finetune_desra.yml``, seed 0, on every photo of the fine-tune set. Its stages write into
``--out``:

1. the held-out set with both models and DeSRA-det (``heldout/sr_mse/``, ``heldout/sr_gan/``, ``heldout/masks/``);
2. the fine-tune set likewise (``rounds/001/sr_mse/``, ``sr_gan/``, ``masks/``), its pseudo-GT (eq. 10,
   ``rounds/001/pseudo_gt/``) and the DeSRA fine-tune of the GAN-SR model and its discriminator
   (:mod:`desra_basicsr.jobs.finetune`: ``DeSRAFinetuneModel``, ``PseudoGTPairedDataset``; options
   ``rounds/001/finetune/options/finetune_desra.yml``, log ``rounds/001/finetune/finetune.log``);
3. for both sets: inference with the fine-tuned model and DeSRA-det again (``rounds/001/pool_after/`` and
   ``rounds/001/heldout/``: ``sr/``, ``masks/``), the detected area before/after, removal and addition rates (the
   paper's Table 3, ``compare.json``) and how much GAN-SR detail survives outside the before-masks
   (:mod:`desra_basicsr.evaluation.detail`);
4. the visual report of the held-out set (``report/round_001/index.html``) and the model registry
   (``models/manifest.json``: ``v1`` is the fine-tuned model, served by ``desra sr --opt models/v1/sr.yml``).

Every stage is resumable (``loop_state.json`` records the finished ones), so an interrupted demo continues where
it stopped; a folder holding a run with other settings is refused, and so is one written with another recipe or other
weights at the same paths (the loop records the SHA-256 of the option and weights files it reads).
"""
import json
import os.path as osp
from dataclasses import dataclass
from typing import Any, Dict, Optional

from desra_basicsr.errors import DesraInputError, DesraSettingsError
from desra_basicsr.jobs.finetune import MAX_ITERS, MAX_SEED
from desra_basicsr.settings import Settings, setting
from desra_basicsr.utils import atomic_write_path

REPO_ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
PRETRAINED = osp.join(REPO_ROOT, 'experiments', 'pretrained_models')
DEMO_DATA = osp.join(REPO_ROOT, 'demo_data')
MSE_OPT = osp.join(REPO_ROOT, 'options', 'demo_train_mse.yml')
GAN_OPT = osp.join(REPO_ROOT, 'options', 'demo_train_gan.yml')
FINETUNE_TEMPLATE = osp.join(REPO_ROOT, 'options', 'demo_finetune_desra.yml')
SETS = ('heldout', 'finetune')
SET_TITLES = {'heldout': 'held-out set (never seen by the fine-tune)', 'finetune': 'fine-tune set'}
SEMANTICS_OFF = (
    'notice: semantics are OFF: no SegFormer ADE20K checkpoint was given, so every class weight is 1 (the paper\'s '
    '"without semantics" ablation). To turn them on, download the mmsegmentation checkpoint\n'
    '  {checkpoint}\n'
    '(SegFormer mit-b5, ADE20K, 640x640; its URL is in mmseg\'s configs/segformer/metafile.yaml) and pass\n'
    '  desra demo --seg-checkpoint PATH/TO/segformer.pth [--seg-config CONFIG.py]  '
    '(default config: the mit-b5 640x640 one shipped with mmseg)')


@dataclass(frozen=True)
class DemoSettings(Settings):
    """What a demo run uses (paths made absolute); recorded by the loop in ``<out>/loop_state.json``.

    The loop records the SHA-256 of each file too (:meth:`desra_basicsr.jobs.loop.LoopSettings.files`).

    Attributes:
        finetune_input (str): Folder of the fine-tune set's real LR photos.
        heldout_input (str): Folder of the held-out set's real LR photos (never used for training).
        iters (int): DeSRA fine-tune iterations.
        seed (int): ``manual_seed`` of the fine-tune.
        finetune_options (str): Option file the fine-tune options are written from (the recipe).
        mse_weights (str): MSE-SR generator weights.
        gan_weights (str): GAN-SR generator weights.
        netd_weights (str): GAN-SR discriminator weights.
        seg_checkpoint (str | None): SegFormer ADE20K checkpoint (semantics on) or None (off).
        seg_config (str | None): mmseg config for the checkpoint (None: mmseg's mit-b5 ADE20K 640x640).
        device (str): ``cpu``, ``cuda`` or ``cuda:N``.
    """
    finetune_input: str = setting(osp.join(DEMO_DATA, 'finetune_lr'), kind='path')
    heldout_input: str = setting(osp.join(DEMO_DATA, 'heldout_lr'), kind='path')
    iters: int = setting(500, lo=1, hi=MAX_ITERS)
    seed: int = setting(0, lo=0, hi=MAX_SEED)
    finetune_options: str = setting(FINETUNE_TEMPLATE, kind='path')
    mse_weights: str = setting(osp.join(PRETRAINED, 'demo_mse_x4.pth'), kind='path')
    gan_weights: str = setting(osp.join(PRETRAINED, 'demo_gan_x4.pth'), kind='path')
    netd_weights: str = setting(osp.join(PRETRAINED, 'demo_gan_x4_netD.pth'), kind='path')
    seg_checkpoint: Optional[str] = setting(None, kind='path')
    seg_config: Optional[str] = setting(None, kind='path')
    device: str = setting('cpu', kind='device')

    def check(self) -> None:
        """A segmentation config comes with its checkpoint."""
        if self.seg_config and not self.seg_checkpoint:
            raise DesraSettingsError('--seg-config: needs --seg-checkpoint')

    def inputs(self) -> Dict[str, str]:
        """The LR folder of each set."""
        return {'heldout': self.heldout_input, 'finetune': self.finetune_input}


def check_settings(settings: DemoSettings) -> None:
    """Check the demo's inputs and device before any stage runs.

    Args:
        settings (DemoSettings): The settings.

    Raises:
        DesraSettingsError: Naming the first missing file, when the fine-tune set shares photos with the held-out set,
            when the device is not there, or when the package runs without the source checkout the demo needs.
    """
    from desra_basicsr.demo_corpus import check_disjoint
    from desra_basicsr.devices import resolve_device

    for path in (MSE_OPT, GAN_OPT, FINETUNE_TEMPLATE):
        if not osp.isfile(path):
            raise DesraSettingsError(f'{path} not found: `desra demo` needs the source checkout of desra-basicsr '
                                     '(its options/, demo_data/ and experiments/pretrained_models/ folders are not '
                                     'installed with the package); clone the repository and run `make demo` there')
    for name, folder in settings.inputs().items():
        if not osp.isdir(folder):
            raise DesraSettingsError(f'{folder}: folder of the {SET_TITLES[name]}\'s LR photos not found')
    for path in (settings.mse_weights, settings.gan_weights, settings.netd_weights, settings.finetune_options,
                 settings.seg_checkpoint, settings.seg_config):
        if path and not osp.isfile(path):
            raise DesraSettingsError(f'{path}: file not found')
    check_disjoint(settings.finetune_input, settings.heldout_input)
    resolve_device(settings.device)


class DemoError(DesraInputError):
    """A stage of the demo failed on some input, or found nothing to fine-tune on; the commands exit with 1."""


def loop_settings(out: str, settings: DemoSettings) -> Any:
    """The demo as ``desra loop`` settings: the fine-tune set as the one batch, the held-out set as ``heldout``.

    The demo's recipe: a fixed length of ``settings.iters`` iterations from ``settings.finetune_options``, on every
    photo of the fine-tune set (those without artifacts teach the model to keep its own output), seed
    ``settings.seed``. The demo shows its figures whatever they are, so its one candidate is always accepted
    (``forget_tolerance`` and ``pool_tolerance`` 100 %).

    Args:
        out (str): Output folder.
        settings (DemoSettings): The demo's settings.

    Returns:
        desra_basicsr.jobs.loop.LoopSettings: The loop's settings.
    """
    from desra_basicsr.jobs.loop import LoopSettings
    return LoopSettings(
        out=out, batches=(settings.finetune_input, ), heldout=settings.heldout_input, gan_opt=GAN_OPT,
        gan_weights=settings.gan_weights, netd_weights=settings.netd_weights, mse_opt=MSE_OPT,
        mse_weights=settings.mse_weights, template=settings.finetune_options, length='fixed', iters=settings.iters,
        min_pool=1, train_clean=True, forget_tolerance=100.0, pool_tolerance=100.0, seed=settings.seed,
        seg_checkpoint=settings.seg_checkpoint, seg_config=settings.seg_config, device=settings.device)


def _photo_names(figures: Dict[str, Any]) -> Dict[str, Any]:
    """The fine-tune set's figures with the loop's pool names (``r001_<photo>``) back to the photos' names."""
    def strip(table: Dict[str, Any]) -> Dict[str, Any]:
        return {name.split('_', 1)[1]: row for name, row in table.items()}

    return {'summary': figures['summary'], 'per_image': strip(figures['per_image']),
            'detail': dict(figures['detail'], per_image=strip(figures['detail']['per_image']))}


def run_demo(out: str, settings: DemoSettings) -> Dict[str, Any]:
    """Run the whole loop (see the module docstring) and print the paper-style tables.

    Args:
        out (str): Output folder.
        settings (DemoSettings): Inputs, weights, fine-tune recipe, iterations and seed, segmentation and device.

    Returns:
        dict: Per set (``heldout``, ``finetune``): the comparison ``summary``, ``per_image`` and ``detail``; and
        stage ``seconds``, ``semantics``, ``report``.

    Raises:
        DesraSettingsError: For missing inputs, overlapping sets or an output folder holding another run (other
            settings, or another recipe or other weights at the same paths).
        DemoError: When a stage fails, or no photo of the fine-tune set has artifacts.
    """
    from desra_basicsr.jobs import loop
    check_settings(settings)
    out = osp.abspath(out)
    _print_start(out, settings)
    looped = loop.run(loop_settings(out, settings), on_round=lambda record: None)
    found = looped.rounds[0]
    if 'skip' in found:
        raise DemoError(f'{settings.finetune_input}: {found["skip"]["reason"]}')
    result: Dict[str, Any] = {'heldout': found['heldout'], 'finetune': _photo_names(found['pool_after'])}
    result.update(seconds={name: record['seconds'] for name, record in found.items()
                           if isinstance(record, dict) and 'seconds' in record},
                  semantics=bool(settings.seg_checkpoint), report=found['report']['page'])
    with atomic_write_path(osp.join(out, 'demo_result.json')) as tmp:
        with open(tmp, 'w') as fobj:
            json.dump(result, fobj, indent=2)
    print_tables(result, settings)
    return result


def _print_start(out: str, settings: DemoSettings) -> None:
    """The first lines: what runs where, and whether semantics are on."""
    from desra_basicsr.constants import SEGFORMER_CHECKPOINT_NAME
    print(f'DeSRA demo -> {out}: fine-tune {settings.iters} iterations (seed {settings.seed}) on '
          f'{settings.finetune_input}, judged on {settings.heldout_input}; device {settings.device}')
    print('semantics: ON (' + settings.seg_checkpoint + ')' if settings.seg_checkpoint else
          SEMANTICS_OFF.format(checkpoint=SEGFORMER_CHECKPOINT_NAME),
          flush=True)


def format_set_line(name: str, figures: Dict[str, Any]) -> str:
    """One set's headline: removal and addition rates, area before/after, detail kept outside the masks.

    Args:
        name (str): ``heldout`` or ``finetune``.
        figures (dict): ``run_demo(...)[name]``.

    Returns:
        str: Two lines of text.
    """
    s, d = figures['summary'], figures['detail']
    removal = f'{s["removal_rate"]:.2f} %' if s['n_regions_before'] else 'n/a (nothing detected before)'
    change = (f' ({100.0 * (s["area_after"] - s["area_before"]) / s["area_before"]:+.1f} %)'
              if s['area_before'] else '')

    def num(value: Optional[float], fmt: str) -> str:
        return 'n/a' if value is None else format(value, fmt)

    return (f'{SET_TITLES[name]}, {s["images"]} images: removal rate {removal}, addition rate '
            f'{s["addition_rate"]:.2f} % ({s["images_with_additions"]} of {s["images"]} images gained artifacts), '
            f'detected area {s["area_before"]:.2f} % -> {s["area_after"]:.2f} %{change}\n'
            f'  detail outside the before-masks: local std {num(d["std_ratio"], ".3f")} of GAN-SR\'s '
            f'(MSE-SR: {num(d["mse_std_ratio"], ".3f")}), mean |fine-tuned - GAN-SR| {num(d["mad"], ".2f")} grey '
            f'levels (MSE-SR: {num(d["mse_mad"], ".2f")})')


def format_demo_table(figures: Dict[str, Any]) -> str:
    """Per image of one set: detected artifact area before/after fine-tuning (percent of the SR image), regions
    removed, whether new artifacts appeared, and the detail kept outside the before-mask.

    Args:
        figures (dict): ``run_demo(...)[set]``.

    Returns:
        str: The table, one line per row.
    """
    lines = [f'{"image":<16}{"area before %":>15}{"area after %":>14}{"regions":>9}{"removed":>9}'
             f'{"new artifacts":>15}{"detail kept":>13}']
    detail = figures['detail']['per_image']
    for name, row in sorted(figures['per_image'].items()):
        kept = detail.get(name, {}).get('std_ratio', float('nan'))
        lines.append(f'{name:<16}{row["area_before"]:>15.2f}{row["area_after"]:>14.2f}{row["n_regions_before"]:>9d}'
                     f'{row["n_removed"]:>9d}{"yes" if row["added"] else "no":>15}{kept:>13.3f}')
    s = figures['summary']
    lines.append(f'{"mean / total":<16}{s["area_before"]:>15.2f}{s["area_after"]:>14.2f}{s["n_regions_before"]:>9d}'
                 f'{s["n_removed"]:>9d}{s["images_with_additions"]:>15d}{figures["detail"]["std_ratio"] or 0:>13.3f}')
    return '\n'.join(lines)


def print_tables(result: Dict[str, Any], settings: DemoSettings) -> None:
    """Print the held-out table, both sets' headlines, the semantics state and where the report is."""
    print('\n=== DeSRA demo: GAN-SR artifacts before and after the DeSRA fine-tune, held-out photos ===')
    print(format_demo_table(result['heldout']))
    for name in SETS:
        print(format_set_line(name, result[name]))
    print(f'semantics: {"on" if result["semantics"] else "off (no SegFormer checkpoint; see the notice above)"}; '
          f'fine-tune: {settings.iters} iterations, seed {settings.seed}, recipe {settings.finetune_options}')
    print('stage seconds: ' + ', '.join(f'{k} {v}' for k, v in result['seconds'].items()))
    print(f'visual report: {result["report"]}')
