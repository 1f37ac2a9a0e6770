"""avssl: self-supervised audio-visual speaker verification without identity labels."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from avssl.inference import Verifier


def __getattr__(name: str) -> Any:
    """``avssl.Verifier`` without importing torch for every ``import avssl`` (the CLI starts faster)."""
    if name == "Verifier":
        from avssl.inference import Verifier

        return Verifier
    raise AttributeError(f"module 'avssl' has no attribute {name!r}")


__all__ = ["Verifier", "__version__"]
