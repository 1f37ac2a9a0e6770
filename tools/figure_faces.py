"""Docs figure: face frames as `avssl prepare-faces` stores them, and the visual DINO views of one utterance.

Extracts (for real, through the store) the frames of three utterances of a prepared corpus: two sessions
of one identity and one of another, then cuts the multi-crop views of the first. Usage:

    python tools/figure_faces.py runs/demo/data docs/img/faces.png
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from avssl.data.manifest import read_manifest, write_manifest  # noqa: E402
from avssl.faces.store import FaceStore  # noqa: E402
from avssl.faces.views import FaceMultiCropDataset  # noqa: E402
from avssl.prep.faces import prepare_faces  # noqa: E402

FRAMES_SHOWN = 6


def pick(utterances: list) -> list:
    """Two sessions of the first identity and one session of the second (the key's folders; for the
    illustration only, training never reads them)."""
    first, second = sorted({u.key.split("/")[0] for u in utterances})[:2]
    sessions = sorted({u.key.split("/")[1] for u in utterances if u.key.startswith(first + "/")})[:2]
    chosen = [next(u for u in utterances if u.key.startswith(f"{first}/{s}/")) for s in sessions]
    return chosen + [next(u for u in utterances if u.key.startswith(second + "/"))]


def main(data: Path, out_png: Path) -> None:
    utterances = pick([u for u in read_manifest(data / "manifests" / "dev.tsv") if u.video])
    with tempfile.TemporaryDirectory() as tmp:
        manifest = write_manifest(Path(tmp) / "figure.tsv", utterances)
        prepare_faces(manifest, Path(tmp) / "store", workers=1)
        store = FaceStore(Path(tmp) / "store")
        strips = [store.frames(u) for u in utterances]
        item = FaceMultiCropDataset(utterances, store, seed=0)[0]

    fig = plt.figure(figsize=(9.5, 6.8))
    grid = fig.add_gridspec(4, FRAMES_SHOWN, hspace=0.62, wspace=0.06)
    for row, (utt, frames) in enumerate(zip(utterances, strips, strict=True)):
        times = store.times(len(frames))
        for col in range(FRAMES_SHOWN):
            ax = fig.add_subplot(grid[row, col])
            ax.axis("off")
            if col < len(frames):
                ax.imshow(frames[col])
                ax.set_title(f"{times[col]:.1f} s", fontsize=7)
        fig.text(
            0.11,
            grid[row, 0].get_position(fig).y1 + 0.04,
            f"{utt.key}: {len(frames)} frames at 2.5/s",
            fontsize=8,
        )
    views = [("global", v) for v in item["global"]] + [("local", v) for v in item["local"]]
    for col, (kind, view) in enumerate(views[:FRAMES_SHOWN]):
        ax = fig.add_subplot(grid[3, col])
        ax.imshow(np.asarray(view.permute(1, 2, 0)))
        ax.set_title(f"{kind} {view.shape[-1]}px", fontsize=7)
        ax.axis("off")
    fig.text(
        0.11,
        grid[3, 0].get_position(fig).y1 + 0.04,
        f"visual DINO views of {utterances[0].key}: 2 global crops (112 px), 4 local crops (64 px), "
        "each from another frame and augmented independently",
        fontsize=8,
    )
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=110, bbox_inches="tight")
    print(f"wrote {out_png}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]))
