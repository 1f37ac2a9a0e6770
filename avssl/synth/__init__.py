"""The embedded audio-visual corpus: synthetic voices and faces recorded in varied sessions.

Every demo and test of the project runs on it; see docs/concepts/synthetic-corpus.md.
"""

from __future__ import annotations

from avssl.synth.corpus import SIZES, SizePreset, generate_corpus

__all__ = ["SIZES", "SizePreset", "generate_corpus"]
