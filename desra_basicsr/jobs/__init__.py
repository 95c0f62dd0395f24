"""The folder-level Python API under the ``desra`` commands: one module per job, each with a typed settings
dataclass and a ``run(settings)`` function returning a result object.

==========================  ================================  ========================================================
module                      settings                          result
==========================  ================================  ========================================================
``jobs.sr``                 :class:`SRSettings`               :class:`~.core.JobResult` (``OUT/<stem>.png``)
``jobs.detect``             :class:`DetectSettings`           :class:`~.core.JobResult` (masks, maps)
``jobs.pseudo_gt``          :class:`PseudoGTSettings`         :class:`~.core.JobResult` (pseudo-GT images)
``jobs.labelme``            :class:`LabelmeSettings`          :class:`~.core.JobResult` (GT masks)
``jobs.evaluate``           :class:`EvaluateSettings`         :class:`EvaluateResult` (IoU, precision, recall; sweeps)
``jobs.compare``            :class:`CompareSettings`          :class:`CompareResult` (removal and addition rates)
``jobs.calibrate``          :class:`CalibrateSettings`        :class:`CalibrateResult` (class-weight table)
``jobs.report``             :class:`ReportSettings`           :class:`ReportResult` (HTML page and PNG grids)
``jobs.localizer_train``    :class:`LocalizerTrainSettings`   :class:`~.core.JobResult` (localiser)
``jobs.fuse``               :class:`FuseSettings`             :class:`~.core.JobResult` (fused images)
``jobs.finetune``           :class:`FinetuneSettings`         :class:`FinetuneResult` (checkpoints by iteration)
``jobs.checkpoint_scores``  :class:`CheckpointScoreSettings`  list of ``CheckpointScore``
``jobs.loop``               :class:`LoopSettings`             :class:`LoopResult` (rounds, model registry)
==========================  ================================  ========================================================

Example::

    from desra_basicsr.jobs import detect, pseudo_gt
    result = detect.run(detect.DetectSettings(mse='out/mse', gan='out/gan', out='out/masks'))
    print(result.describe(), detect.DetectRecord.done(result)['chelsea'].artifact_fraction)
    pseudo_gt.run(pseudo_gt.PseudoGTSettings(mse='out/mse', gan='out/gan', masks='out/masks', out='out/pgt'))

The folder jobs (sr, detect, pseudo-gt, labelme) share :mod:`desra_basicsr.jobs.core`: resumable, refusing changed
settings unless ``overwrite=True``, atomic outputs and an incremental ``summary.json``. Every job raises
:class:`~desra_basicsr.errors.DesraSettingsError` for settings it cannot use (before doing any work) and
:class:`~desra_basicsr.errors.DesraInputError` when an input file fails in a job that reads all files together
(evaluate, compare, calibrate, report). Importing a job module is cheap; torch, OpenCV and BasicSR are imported by
``run``.
"""
