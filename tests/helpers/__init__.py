"""Helpers shared by the test modules (``from helpers.photos import skimage_photo_bgr``)."""
