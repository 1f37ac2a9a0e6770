"""avssl: self-supervised audio-visual speaker verification without identity labels."""

__version__ = "0.1.0"
