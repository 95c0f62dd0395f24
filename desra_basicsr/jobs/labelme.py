"""labelme job: ground-truth artifact masks from labelme annotations.

Every ``*.json`` of the input folder becomes ``OUT/<json stem>.png`` (uint8 0/255, the annotated image's size), the
union of its polygon, rectangle and circle shapes (see :mod:`desra_basicsr.evaluation.labelme`); ``summary.json``
records each file's ``pixels`` (:class:`LabelmeRecord`; 0 for an annotation without a matching shape).

Example::

    from desra_basicsr.jobs.labelme import LabelmeSettings, run
    run(LabelmeSettings(json='annotations', out='gt_masks', labels=['artifact']))
"""
import os
import os.path as osp
from dataclasses import dataclass
from typing import List, Optional

from desra_basicsr.folders import check_out_dir, require_folder
from desra_basicsr.jobs.core import FolderJob, JobItem, JobResult, run_job
from desra_basicsr.jobs.records import ItemRecord
from desra_basicsr.settings import Settings, setting


@dataclass(frozen=True)
class LabelmeSettings(Settings):
    """Settings of :func:`run`.

    Attributes:
        json (str): Folder of labelme JSON files.
        out (str): Output folder for the masks.
        labels (list[str] | None): Use only shapes with these labels; None uses every shape.
        overwrite (bool): Recompute every mask even when an earlier run with other settings wrote them.
        progress (bool): Show a progress bar.
    """
    json: str = setting(kind='path')
    out: str = setting(kind='path')
    labels: Optional[List[str]] = None
    overwrite: bool = False
    progress: bool = True


@dataclass(frozen=True)
class LabelmeRecord(ItemRecord):
    """``summary.json`` record of one rasterised annotation.

    Attributes:
        pixels (int): Mask pixels (0 for an annotation without a matching shape).
    """
    pixels: int


def run(settings: LabelmeSettings) -> JobResult:
    """Rasterise every labelme file of ``settings.json``.

    Args:
        settings (LabelmeSettings): Input folder, label filter and output folder.

    Returns:
        JobResult: Counts of this run; ``items`` holds each file's record (:class:`LabelmeRecord`).

    Raises:
        DesraSettingsError: For a missing or empty input folder or an unusable output folder.
    """
    from desra_basicsr.errors import DesraSettingsError
    require_folder(settings.json, 'json')
    check_out_dir(settings.out, {'json': settings.json})
    files = sorted(osp.join(settings.json, f) for f in os.listdir(settings.json) if f.lower().endswith('.json'))
    if not files:
        raise DesraSettingsError(f'{settings.json}: --json holds no .json file')

    import numpy as np

    from desra_basicsr.evaluation.labelme import labelme_to_mask
    from desra_basicsr.image_io import stem, write_mask

    def process(item: JobItem) -> dict:
        mask = labelme_to_mask(item.inputs[0], settings.labels)
        write_mask(item.outputs[0], mask)
        return LabelmeRecord(int(np.count_nonzero(mask))).fields()

    items = [JobItem(stem(path), (path, ), (osp.join(settings.out, f'{stem(path)}.png'), )) for path in files]
    job_settings = {'json': settings.json, 'labels': sorted(settings.labels) if settings.labels else None}
    return run_job(
        FolderJob(command='labelme2mask', out_dir=settings.out, input_dirs={'json': settings.json},
                  settings=job_settings, items=items, process=process),
        overwrite=settings.overwrite,
        progress=settings.progress)
