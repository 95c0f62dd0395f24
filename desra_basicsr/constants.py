"""Numbers and names of the DeSRA method and its release, defined once for the whole package.

This module imports nothing, so command-line parsers can show these defaults without loading numpy or torch.
"""

#: DeSRA-det step 4: artifact where the (adjusted) indicator D is below this (paper Table 5: 0.7).
DETECT_THRESHOLD = 0.7

#: DeSRA-det step 5: 8-connected regions of at most this many pixels are dropped (at the x4 SR output scale).
MIN_AREA = 4000

#: Window of LDL's local residual variance (LDL's artifact map and loss use 7).
LDL_KSIZE = 7

#: The DeSRA release works in "valid" mode: its masks are this many pixels smaller on each side.
RELEASE_BORDER = 5

#: SegFormer mit-b5 ADE20K 640x640 config inside the mmsegmentation wheel (relative to ``mmseg/.mim/configs``).
SEGFORMER_CONFIG_NAME = 'segformer/segformer_mit-b5_8xb2-160k_ade20k-640x640.py'

#: The matching checkpoint of mmsegmentation's model zoo (URL in ``configs/segformer/metafile.yaml``).
SEGFORMER_CHECKPOINT_NAME = 'segformer_mit-b5_640x640_160k_ade20k_20210801_121243-41d2845b.pth'

#: ``mask_channel`` values of the jobs that read masks: channel of colour masks in RGBA order (0 red ... 3 alpha).
MASK_CHANNEL_CHOICES = (0, 1, 2, 3)
