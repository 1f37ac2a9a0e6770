"""How often a cluster-aware DINO partner is the anchor's speaker, and in another session (diagnostic).

Cluster-aware DINO helps only through partners that are the same speaker in another session: those
teach the model to ignore the channel. This tool reads a clustering (``clusters/epochNNNN.tsv`` of a
cluster-aware run) and the manifest, and prints, over all anchors, the share of partners that are the
same speaker, the same session, and both the same speaker and another session, for three partner rules:
any member of the anchor's cluster (what training draws), and the third of the members whose long-term
spectrum (the channel's fingerprint) is furthest from / closest to the anchor's. Speakers and sessions
come from the keys (``speaker/session/utterance``) of the synthetic corpus: a diagnostic, never a
training signal.

    python tools/partner_quality.py runs/demo/data/manifests/dev.tsv runs/demo/ca_dino/clusters/epoch0000.tsv
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
import torchaudio

from avssl.data.audio import load_audio
from avssl.data.manifest import Utterance, read_manifest
from avssl.pseudo.labels import read_pseudo_labels


def long_term_spectrum(utterance: Utterance, mel: torchaudio.transforms.MelSpectrogram, sample_rate: int) -> np.ndarray:
    """Mean log-Mel spectrum of the utterance, level removed: mostly the session's EQ and the voice's tilt."""
    wave = torch.as_tensor(load_audio(utterance.audio, sample_rate)).float().reshape(1, -1)
    spectrum = (mel(wave) + 1e-6).log().mean(dim=-1).ravel()
    return (spectrum - spectrum.mean()).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("manifest")
    parser.add_argument("clusters", help="key -> cluster file (clusters/epochNNNN.tsv)")
    parser.add_argument("--sample-rate", type=int, default=16000)
    args = parser.parse_args()

    utterances = read_manifest(args.manifest)
    by_key = read_pseudo_labels(args.clusters)
    cluster = np.array([by_key[u.key] for u in utterances])
    speaker = np.array([u.key.split("/")[0] for u in utterances])
    session = np.array([u.key.split("/")[1] for u in utterances])
    mel = torchaudio.transforms.MelSpectrogram(args.sample_rate, n_fft=512, hop_length=args.sample_rate // 100, n_mels=40)
    spectra = np.stack([long_term_spectrum(u, mel, args.sample_rate) for u in utterances])

    shares: dict[str, list[tuple[float, float, float]]] = {"any member": [], "channel-far third": [],
                                                             "channel-near third": []}
    for anchor in range(len(utterances)):
        members = np.flatnonzero((cluster == cluster[anchor]) & (np.arange(len(utterances)) != anchor))
        if members.size == 0:
            continue
        by_distance = members[np.argsort(((spectra[members] - spectra[anchor]) ** 2).sum(axis=1))]
        third = max(1, members.size // 3)
        for rule, partners in (("any member", members), ("channel-far third", by_distance[-third:]),
                               ("channel-near third", by_distance[:third])):
            same_speaker = speaker[partners] == speaker[anchor]
            same_session = session[partners] == session[anchor]
            shares[rule].append((same_speaker.mean(), same_session.mean(), (same_speaker & ~same_session).mean()))
    print("| partner rule | same speaker | same session | same speaker, other session |")
    print("|---|---:|---:|---:|")
    for rule, rows in shares.items():
        speaker_share, session_share, useful = np.mean(rows, axis=0)
        print(f"| {rule} | {speaker_share:.3f} | {session_share:.3f} | {useful:.3f} |")


if __name__ == "__main__":
    main()
