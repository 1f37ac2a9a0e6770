"""Docs figure: DINO's positives from one utterance vs cluster-aware DINO's from two utterances of a cluster.

Reads a prepared corpus and a clustering round of a real cluster-aware run, picks an anchor whose
partner (drawn as the training views draw it) comes from another session, and plots the log-Mel
spectrograms of the crops. Usage:

    python tools/figure_stage1_views.py runs/demo/data exp/ca/clusters/epoch0000.tsv docs/img/stage1_views.png
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from avssl.config import CropConfig, FeatureConfig  # noqa: E402
from avssl.data.manifest import read_manifest  # noqa: E402
from avssl.data.views import AudioMultiCropDataset  # noqa: E402
from avssl.features import Fbank  # noqa: E402
from avssl.pseudo.labels import read_pseudo_labels  # noqa: E402


def main(data: Path, labels_file: Path, out_png: Path) -> None:
    utterances = read_manifest(data / "manifests" / "dev.tsv")
    crops = CropConfig(num_global=2, global_seconds=2.0, num_local=0, local_seconds=1.0)
    dataset = AudioMultiCropDataset(utterances, crops, 16000, seed=0, cache_audio=False)
    labels = read_pseudo_labels(labels_file)
    dataset.set_clusters(np.array([labels[u.key] for u in utterances]), global_from_partner=1, local_from_partner=0)
    # For the illustration only, the keys' speaker and session folders pick an anchor whose partner is
    # the intended case: the same (true) speaker in another session. Training never reads them.
    speaker = [u.key.split("/")[0] for u in utterances]
    session = [u.key.split("/")[1] for u in utterances]
    anchor = next(
        i for i in range(len(dataset))
        if session[dataset[i]["partner"]] != session[i] and speaker[dataset[i]["partner"]] == speaker[i]
    )
    clustered = dataset[anchor]
    dataset.set_clusters(None)
    plain = dataset[anchor]
    fbank = Fbank(FeatureConfig(mean_norm=False))
    panels = [
        (plain["global"][0], f"DINO: crop 1 of {utterances[anchor].key}"),
        (plain["global"][1], f"DINO: crop 2 of {utterances[anchor].key}"),
        (clustered["global"][0], f"CA-DINO: crop of the anchor {utterances[anchor].key}"),
        (clustered["global"][1], f"CA-DINO: crop of its cluster partner {utterances[clustered['partner']].key}"),
    ]
    fig, axes = plt.subplots(2, 2, figsize=(11, 5.5))
    for ax, (wave, title) in zip(axes.ravel(), panels, strict=True):
        ax.imshow(fbank(wave.unsqueeze(0))[0].numpy(), origin="lower", aspect="auto", cmap="magma")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("frame (10 ms)")
        ax.set_ylabel("mel band")
    fig.suptitle("Positive pairs: two crops of one utterance share its session; a cluster partner brings another",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    print(f"anchor {utterances[anchor].key}, partner {utterances[clustered['partner']].key} -> {out_png}")



if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
