"""The face data path: frames sampled from face-track videos, their store, augmentation and DINO views.

:mod:`avssl.faces.frames` decodes and crops, :mod:`avssl.faces.store` keeps extracted frames on disk
(written by ``avssl prepare-faces``, :mod:`avssl.prep.faces`), :mod:`avssl.faces.sources` gives the
training data either from the store or decoded on the fly, :mod:`avssl.faces.augment` corrupts crops
and :mod:`avssl.faces.views` cuts DINO's multi-crop views.
"""
