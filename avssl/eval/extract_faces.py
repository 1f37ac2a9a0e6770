"""`avssl extract-faces`: one face embedding per utterance of a manifest, in the embeddings ``.npz`` format.

The file is the one :func:`avssl.eval.extract.save_embeddings` writes for audio, so ``avssl eval
--face-embeddings`` (and ``--face-cohort-embeddings``) read it as they read audio embeddings.
Frames come from a face store (``--store``, written by ``avssl prepare-faces``) or are decoded from the
manifest's videos with the sampling the encoder was trained with. Utterances without usable video are
skipped and listed, with the reason, in the file's metadata (``skipped``), as unreadable audio is.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from avssl.data.manifest import read_manifest
from avssl.errors import DataError
from avssl.eval.extract import save_embeddings
from avssl.faces.embed import DEFAULT_BATCH_FRAMES, embed_faces
from avssl.faces.sources import DecodedFaces, FaceSource
from avssl.faces.store import FaceStore
from avssl.train.encoder_file import load_face_encoder

log = logging.getLogger(__name__)

FORMAT = "avssl-face-embeddings/1"


@dataclass(frozen=True)
class FaceExtractionSummary:
    """What an extraction produced: the file, its size, what was skipped and how long it took."""

    path: Path
    n_embeddings: int
    dim: int
    skipped: dict[str, str]  # utterance key -> why it has no embedding
    seconds: float


def extract_faces_to_file(
    encoder_path: str | Path,
    manifest_path: str | Path,
    out_path: str | Path,
    store: str | Path | None = None,
    batch_frames: int = DEFAULT_BATCH_FRAMES,
    device: str | torch.device | None = None,
    progress: bool = False,
) -> FaceExtractionSummary:
    """Embed every utterance of ``manifest_path`` that has frames and write ``out_path`` atomically."""
    started = time.time()
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    encoder, info = load_face_encoder(encoder_path, device)
    utterances = read_manifest(manifest_path)
    source: FaceSource = FaceStore(store) if store is not None else DecodedFaces(info.frames)
    rows, failed = embed_faces(encoder, utterances, source, info.image_size, device, batch_frames, progress)
    if not rows:
        raise DataError(
            f"none of the {len(utterances)} utterances of {manifest_path} has usable face frames "
            f"(first: {list(failed.values())[:3]}); check the manifest's video column or the --store folder"
        )
    kept = sorted(rows)
    skipped = {utterances[i].key: reason for i, reason in sorted(failed.items())}
    meta = {
        "format": FORMAT,
        "encoder": str(encoder_path),
        "manifest": str(manifest_path),
        "frames": f"store {store}" if store is not None else f"decoded on the fly with {asdict(info.frames)}",
        "image_size": info.image_size,
        "skipped": skipped,
    }
    matrix = np.stack([rows[i] for i in kept])
    path = save_embeddings(out_path, [utterances[i].key for i in kept], matrix, meta)
    if skipped:
        log.warning("%d of %d utterances have no face embedding (listed in the file's metadata), e.g. %s",
                    len(skipped), len(utterances), next(iter(skipped.values())))
    return FaceExtractionSummary(Path(path), len(kept), int(matrix.shape[1]), skipped, time.time() - started)
