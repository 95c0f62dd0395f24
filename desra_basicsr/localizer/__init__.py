"""Artifact localiser: a two-class (clean / artifact) segmentation model trained on DeSRA's artifact data.

DeSRA-det (Xie et al., ICML 2023, section 3.2) needs the MSE-SR twin's output of every image it checks. A follow-up
(Zhao, "The Cross-Domain Application Research of a Super-Resolution Semantic Artifact Rectification Method")
trains a DeepLabV3+ segmentation network on pairs of GAN-SR images and DeSRA-det masks, so that artifacts are
found from the generated image alone. This package does that with mmsegmentation's own models and training:

* :mod:`~desra_basicsr.localizer.config`: the training config, built from a config shipped inside the
  mmsegmentation wheel (DeepLabV3+ ResNet-50 / ResNet-18, or the lighter SegFormer mit-b0), with two classes, no
  download, plain BatchNorm;
* :mod:`~desra_basicsr.localizer.dataset`: each training source (image and artifact-mask pairs, or clean images)
  as an mmseg dataset;
* :mod:`~desra_basicsr.localizer.sampler`: the sources drawn with their weights (an mmengine sampler);
* :mod:`~desra_basicsr.localizer.transforms`: a random crop that holds the image's edges about half as often as its
  middle (``--edge-crops``);
* :mod:`~desra_basicsr.localizer.training`: training through mmengine's ``Runner``, writing a checkpoint and the
  config;
* :mod:`~desra_basicsr.localizer.predictor`: the artifact-probability map of an image, and a detector with the
  interface of :mod:`desra_basicsr.detection.methods` (``desra detect --method localizer``).

See docs/localizer-fusion.md.
"""
