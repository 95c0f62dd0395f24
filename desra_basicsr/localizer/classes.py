"""Labels of the artifact localiser, shared by its config, dataset, training and predictor."""

#: Class names by label: 0 clean, 1 artifact.
CLASSES = ('clean', 'artifact')
#: Display colour (RGB) of each class, as mmseg's dataset metadata holds it.
PALETTE = [[0, 0, 0], [255, 0, 0]]
