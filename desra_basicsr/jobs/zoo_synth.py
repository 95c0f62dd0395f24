"""Synthetic-artifact job (``desra zoo synth``): paint artifacts of stated classes into clean HR photos.

For every photo ``<hrstem>`` of ``hr``, every class of ``classes`` and ``k < per_image``, the item
``<hrstem>__<class>__<k>`` paints one artifact (:func:`desra_basicsr.zoo.synthetic.paint`) and writes, as
:mod:`desra_basicsr.jobs.zoo_samples` reads them:

* ``OUT/img/<name>.png``: the photo with the artifact;
* ``OUT/mask/<name>.png``: its exact mask, 0/255 (pixels outside it are those of the photo);
* ``OUT/summary.json`` (:mod:`desra_basicsr.jobs.core`, command ``zoo synth``): the settings, and per item the
  ``class``, the ``target`` (absolute path of the clean photo), the ``strength``, the mask's ``area`` (fraction),
  ``height`` and ``width``.

Each item draws from its own generator, seeded by ``seed`` and the item's name
(:func:`desra_basicsr.zoo.synthetic.rng_for`), so a resumed run, a run under torchrun (each rank paints its share)
and a run of one class give the same images as one uninterrupted run.

Example::

    from desra_basicsr.jobs.zoo_synth import ZooSynthSettings, run
    run(ZooSynthSettings(hr='hr', out='zoo/synth', classes='grid,halo', per_image=2, strength='halo=2'))
"""
from dataclasses import dataclass
from typing import Dict, Literal, Optional, Tuple

from desra_basicsr.errors import DesraSettingsError
from desra_basicsr.folders import check_out_dir, pair_folders
from desra_basicsr.jobs.core import FolderJob, JobItem, JobResult, run_job
from desra_basicsr.jobs.zoo_samples import SYNTH_COMMAND, synthetic_image_path, synthetic_mask_path
from desra_basicsr.settings import Settings, setting
from desra_basicsr.zoo import SHAPES

#: Values of ``shape``: a shape for every artifact, or ``'random'`` (each artifact draws one).
SHAPE_CHOICES = ('random', ) + SHAPES
#: Most artifacts per photo and class.
MAX_PER_IMAGE = 1000
#: Largest seed.
MAX_SEED = 2**63 - 1
#: Separator of the parts of an item name (``<hrstem>__<class>__<k>``).
NAME_SEP = '__'


@dataclass(frozen=True)
class ZooSynthSettings(Settings):
    """Settings of :func:`run`.

    Attributes:
        hr (str): Folder of clean HR photos.
        out (str): Output folder (``img/``, ``mask/``, ``summary.json``).
        classes (str | None): Comma-separated class names of :data:`desra_basicsr.zoo.synthetic.CLASSES`; None:
            every class.
        per_image (int): Artifacts per photo and class.
        strength (str | None): One number for every class (each checked against its class's range), or
            ``name=S,name=S`` for some classes; the others keep their default. None: every default.
        area (float | None): Region area as a fraction of the photo, in (0, 1]; None: each class's default.
        shape (str): ``'random'``, ``'rectangle'``, ``'ellipse'`` or ``'blob'``.
        seed (int): Seed of the whole run.
        overwrite (bool): Paint every item again even when an earlier run with other settings wrote them.
        progress (bool): Show a progress bar.
    """
    hr: str = setting(kind='path')
    out: str = setting(kind='path')
    classes: Optional[str] = None
    per_image: int = setting(1, lo=1, hi=MAX_PER_IMAGE)
    strength: Optional[str] = None
    area: Optional[float] = setting(None, lo=0, lo_open=True, hi=1)
    shape: Literal[SHAPE_CHOICES] = 'random'
    seed: int = setting(0, lo=0, hi=MAX_SEED)
    overwrite: bool = False
    progress: bool = True

    def check(self) -> None:
        """Every class exists and every strength lies in its class's range."""
        self.strengths()

    def class_names(self) -> Tuple[str, ...]:
        """The classes to paint, in the order given (every class when ``classes`` is None).

        Returns:
            tuple[str, ...]: Class names.

        Raises:
            DesraSettingsError: For an empty list or an unknown name.
        """
        from desra_basicsr.zoo.synthetic import CLASSES
        if self.classes is None:
            return tuple(CLASSES)
        names = tuple(dict.fromkeys(name.strip() for name in self.classes.split(',')))
        for name in names:
            if name not in CLASSES:
                raise DesraSettingsError(f'--classes {self.classes}: unknown artifact class {name!r}; choose from '
                                         f'{", ".join(CLASSES)}')
        return names

    def strengths(self) -> Dict[str, float]:
        """The strength of every class to paint.

        Returns:
            dict[str, float]: Class name -> strength.

        Raises:
            DesraSettingsError: For an unknown class, a value that is not a number, a class that is not painted, or
                a strength out of its class's range.
        """
        from desra_basicsr.zoo.synthetic import CLASSES, check_strength
        names = self.class_names()
        strengths = {name: CLASSES[name].strength for name in names}
        if self.strength is not None:
            spec = self.strength.strip()
            parts = [p.partition('=') for p in spec.split(',')] if '=' in spec else [(n, '=', spec) for n in names]
            for name, _, value in parts:
                name = name.strip()
                if name not in strengths:
                    raise DesraSettingsError(f'--strength {self.strength}: {name!r} is not a class being painted '
                                             f'({", ".join(names)}); write NAME=S for those classes, or one number')
                try:
                    strengths[name] = float(value)
                except ValueError:
                    raise DesraSettingsError(f'--strength {self.strength}: {value.strip()!r} is not a number; write '
                                             'one number for every class, or NAME=S,NAME=S')
        for name, value in strengths.items():
            check_strength(name, value)
        return strengths


def item_name(hr_stem: str, cls: str, k: int) -> str:
    """The item name of the ``k``-th artifact of class ``cls`` on photo ``hr_stem``.

    Args:
        hr_stem (str): The photo's file stem.
        cls (str): The class.
        k (int): The artifact's index.

    Returns:
        str: ``<hrstem>__<class>__<k>``.
    """
    return NAME_SEP.join((hr_stem, cls, str(k)))


def run(settings: ZooSynthSettings) -> JobResult:
    """Paint the synthetic artifacts of every photo and write them with their masks.

    Args:
        settings (ZooSynthSettings): Photos, classes, controls and output folder.

    Returns:
        JobResult: Counts of this run; ``items`` holds each item's record.

    Raises:
        DesraSettingsError: For unusable settings (a missing or empty ``hr`` folder included), before any work.
    """
    inputs = {'hr': settings.hr}
    check_out_dir(settings.out, inputs)
    photos, _ = pair_folders(inputs)
    strengths = settings.strengths()

    from desra_basicsr.image_io import read_target_image, stem, write_image, write_mask
    from desra_basicsr.zoo.synthetic import paint, rng_for

    classes: Dict[str, str] = {}
    items = []
    for (photo, ) in photos:
        for cls in strengths:
            for k in range(settings.per_image):
                name = item_name(stem(photo), cls, k)
                classes[name] = cls
                items.append(
                    JobItem(name, (photo, ), (synthetic_image_path(settings.out, name),
                                              synthetic_mask_path(settings.out, name))))

    def process(item: JobItem) -> dict:
        cls = classes[item.name]
        image = read_target_image(item.inputs[0])
        painted, mask = paint(image, cls, rng_for(settings.seed, item.name), strengths[cls], settings.shape,
                              settings.area)
        write_image(item.outputs[0], painted)
        write_mask(item.outputs[1], mask)
        return {
            'class': cls,
            'target': item.inputs[0],
            'strength': strengths[cls],
            'area': round(float(mask.mean()), 6),
            'height': int(mask.shape[0]),
            'width': int(mask.shape[1]),
        }

    job_settings = {
        'hr': settings.hr,
        'strengths': strengths,
        'per_image': settings.per_image,
        'area': settings.area,
        'shape': settings.shape,
        'seed': settings.seed,
    }
    return run_job(
        FolderJob(command=SYNTH_COMMAND, out_dir=settings.out, input_dirs=inputs, settings=job_settings,
                  items=sorted(items, key=lambda item: item.name), process=process),
        overwrite=settings.overwrite,
        progress=settings.progress)
