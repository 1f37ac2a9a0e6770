"""Typed configuration: YAML files loaded into dataclasses, with ``key=value`` overrides.

Why typed: a typo in a key (``optim.lr_min`` for ``optim.min_lr``) or a string where a number belongs
should stop the run before any data is read, with a message that names the key and the file, instead
of being silently ignored and discovered hours later. OmegaConf's structured configs give us the type
checks and the dotted-key overrides; this module turns its exceptions into :class:`ConfigError` and
adds the range checks that types cannot express.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml
from omegaconf import MISSING, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from avssl.errors import ConfigError
from avssl.utils.atomic import atomic_write_text

T = TypeVar("T")


@dataclass
class DataConfig:
    """Where the training utterances and the augmentation sources are (files written by `avssl prepare`)."""

    train_manifest: str = MISSING
    noise_list: str | None = None
    rir_list: str | None = None
    sample_rate: int = 16000
    num_workers: int = 0
    cache_audio: bool = True  # keep decoded training audio in RAM (small corpora); False reads per crop
    # Where augmentation + fbank run: "device" (the training device; workers only read and crop),
    # "workers" (the data-loader workers, on CPU), or "auto" (device on a GPU, workers otherwise).
    featurise_in: str = "auto"
    # Shard index (OUT/shards.tsv) written by `avssl shards` from train_manifest: audio streamed from
    # shards read front to back; null reads the manifest's files at random. cache_audio does not apply.
    shards: str | None = None
    shard_buffer: int = 1000  # utterances in each loader stream's shuffle buffer (decoded audio in RAM)


@dataclass
class CropConfig:
    """DINO multi-crop: the teacher sees the global crops, the student sees all of them."""

    num_global: int = 2
    global_seconds: float = 3.0
    num_local: int = 4
    local_seconds: float = 2.0


@dataclass
class AugmentConfig:
    """Independent corruption of every crop: reverberation or additive noise (method.md, stage I)."""

    prob: float = 1.0
    reverb_weight: float = 1.0
    noise_weight: float = 1.0
    # Random channel EQ, drawn per crop after reverb / noise: a smooth gain curve over log-frequency, the
    # sum of eq_bands cosines whose amplitudes are uniform in +-eq_db / sqrt(eq_bands) dB. A session's
    # microphone and room colour a whole recording alike, so without it "same recording" positives can
    # be matched by their EQ alone. Off by default (not yet shown to help; docs/concepts/dino.md).
    eq_prob: float = 0.0
    eq_db: float = 6.0
    eq_bands: int = 4
    # SNR range in dB per noise category (MUSAN folder names).
    snr_db: dict[str, list[float]] = field(
        default_factory=lambda: {"noise": [0.0, 15.0], "music": [5.0, 15.0], "speech": [10.0, 30.0]}
    )


@dataclass
class FeatureConfig:
    """Log-Mel filterbank front end, computed batched on the training device."""

    n_mels: int = 80
    win_ms: float = 25.0
    hop_ms: float = 10.0
    n_fft: int = 512
    mean_norm: bool = True


@dataclass
class EncoderConfig:
    """The speaker encoder whose teacher copy gives the embeddings."""

    name: str = "ecapa"
    channels: int = 512
    embedding_dim: int = 192


@dataclass
class DinoConfig:
    """DINO head, loss temperatures, centring and teacher momentum (FAIR DINO / WeSpeaker values)."""

    out_dim: int = 65536
    hidden_dim: int = 2048
    bottleneck_dim: int = 256
    head_layers: int = 3
    head_bn: bool = True
    norm_last_layer: bool = True
    freeze_last_layer_epochs: int = 1
    student_temp: float = 0.1
    warmup_teacher_temp: float = 0.04
    teacher_temp: float = 0.07
    warmup_teacher_temp_epochs: float = 0.2  # a fraction (< 1) of all epochs, or a number of epochs
    center_momentum: float = 0.9
    momentum_teacher: float = 0.996
    momentum_teacher_end: float = 1.0


@dataclass
class OptimConfig:
    """SGD with per-step cosine schedules; lr is given per 256 samples of global batch."""

    epochs: int = 150
    batch_size: int = 64  # per process
    lr: float = 0.2
    min_lr: float = 5e-5
    warmup_epochs: float = 10.0
    weight_decay: float = 5e-5
    weight_decay_end: float = 5e-5
    momentum: float = 0.9
    clip_grad: float = 3.0
    steps_per_epoch: int | None = None  # None: one pass over the training data per epoch


@dataclass
class RunConfig:
    """Bookkeeping: seed, output folder, logging and checkpoint cadence."""

    output_dir: str = MISSING
    seed: int = 0
    log_every: int = 10
    save_every_epochs: int = 1
    mixed_precision: str = "no"  # no | bf16 | fp16 (the latter two only on a GPU)
    progress: bool = True
    threads: int | None = None  # torch intra-op threads per process; None leaves torch's default


@dataclass
class DinoRunConfig(RunConfig):
    """Stage I's bookkeeping: the common keys plus continuation, averaging and batch-norm syncing."""

    # Start student, teacher and DINO centre (not the optimiser) from an earlier run's checkpoint.pt:
    # how cluster-aware DINO continues from a DINO model.
    init_checkpoint: str | None = None
    # encoder.pt = the average of the teacher encoders after each of the last N epochs (1: the final one).
    average_last_epochs: int = 1
    # Batch-norm statistics computed over all processes' batches (GPUs only; small per-GPU batches).
    sync_batchnorm: bool = False


@dataclass
class ClusterAwareConfig:
    """Cluster-aware DINO: positive crops from several utterances of one pseudo speaker.

    Crops of one utterance share its channel and session, so same-utterance positives can teach the
    session instead of the speaker; drawing them from two utterances of one cluster cannot.
    """

    enabled: bool = False
    n_clusters: list[int] = field(default_factory=lambda: [6000])  # K per clustering round, last repeats
    recluster_every_epochs: int = 0  # 0: cluster once (fixed); N: re-cluster with the teacher every N epochs
    global_from_partner: int = 1  # global crops taken from the partner utterance (the rest: the anchor)
    local_from_partner: int = 2  # local crops taken from the partner utterance
    kmeans_iterations: int = 20
    # Clusters from another run instead of this teacher's k-means: a key -> cluster file (the
    # clusters/epochNNNN.tsv of a CA-DINO run, or a stage-II round's labels.tsv). For faces, the audio
    # model's clusters give partners from other sessions, whose background and lighting differ, so the
    # shared face is the only thing left to match (docs/concepts/faces.md). Used as given, never re-clustered.
    labels: str | None = None


@dataclass
class FaceFramesConfig:
    """Where face training reads each utterance's frames (``modality: face``).

    A store written by ``avssl prepare-faces`` is read with one open per utterance; without one, every
    read decodes the video again (about 9 times the CPU per sample at VoxCeleb2 sizes, see
    docs/concepts/faces.md), which suits a quick look at a corpus, not long training.
    """

    store: str | None = None  # folder written by `avssl prepare-faces`; null: decode the videos on the fly
    # Decoding on the fly only (a store keeps the settings it was made with):
    rate: float = 2.5  # frames per second, one per 0.4 s
    size: int = 112  # side of the square frames
    crop: float = 1.0  # centre square as a fraction of the shorter side


@dataclass
class FaceCropsConfig:
    """Visual multi-crop: each crop from another frame, resized crops of ``*_scale`` of the frame's area."""

    num_global: int = 2
    global_size: int = 112  # pixels; also the size the face encoder file embeds whole frames at
    global_scale: list[float] = field(default_factory=lambda: [0.5, 1.0])
    num_local: int = 4
    local_size: int = 64
    local_scale: list[float] = field(default_factory=lambda: [0.2, 0.5])


@dataclass
class FaceAugmentSettings:
    """Per-crop face corruption (DINO / SimCLR's set), the same for global and local crops."""

    ratio: list[float] = field(default_factory=lambda: [3 / 4, 4 / 3])  # crop aspect (w / h), log-uniform
    flip_p: float = 0.5
    jitter_p: float = 0.8
    brightness: float = 0.4  # factors in [1 - b, 1 + b]
    contrast: float = 0.4
    saturation: float = 0.2
    hue: float = 0.1  # shift in [-h, h] of a full turn
    blur_p: float = 0.5
    blur_sigma: list[float] = field(default_factory=lambda: [0.1, 2.0])  # in output pixels
    grey_p: float = 0.2


@dataclass
class FaceEncoderConfig:
    """The face encoder (:func:`avssl.models.face_resnet.build_face_encoder`)."""

    name: str = "face_resnet18"
    width: int = 64  # channels of the first stage (doubled at each of the next three); 64 = ResNet-18
    embedding_dim: int = 512


@dataclass
class FaceConfig:
    """Everything visual DINO reads instead of the audio sections (crops, augment, features, encoder)."""

    frames: FaceFramesConfig = field(default_factory=FaceFramesConfig)
    crops: FaceCropsConfig = field(default_factory=FaceCropsConfig)
    augment: FaceAugmentSettings = field(default_factory=FaceAugmentSettings)
    encoder: FaceEncoderConfig = field(default_factory=FaceEncoderConfig)


@dataclass
class DinoTrainConfig:
    """Everything a stage-I (DINO) training run reads.

    ``modality`` picks what is trained: ``audio`` reads the sections crops, augment, features and
    encoder; ``face`` reads the section face instead (and ``data.train_manifest``'s video column).
    Everything else (DINO head and loss, optimiser, run, cluster_aware) is the same for both.
    """

    modality: str = "audio"  # audio | face
    data: DataConfig = field(default_factory=DataConfig)
    crops: CropConfig = field(default_factory=CropConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    encoder: EncoderConfig = field(default_factory=EncoderConfig)
    dino: DinoConfig = field(default_factory=DinoConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: DinoRunConfig = field(default_factory=DinoRunConfig)
    cluster_aware: ClusterAwareConfig = field(default_factory=ClusterAwareConfig)
    face: FaceConfig = field(default_factory=FaceConfig)

    def validate(self) -> None:
        """Range checks a type cannot express; each message names the offending key."""
        # Partner crops are counted against the crops of the modality being trained.
        crops = "face.crops" if self.modality == "face" else "crops"
        num_global, num_local = _lookup(self, f"{crops}.num_global"), _lookup(self, f"{crops}.num_local")
        checks: list[tuple[bool, str, str]] = [
            (self.modality in MODALITIES, "modality", f"must be one of {', '.join(MODALITIES)}"),
            *_face_checks(self.face),
            *_data_checks(self.data),
            (
                not (self.data.shards and self.modality == "face"),
                "data.shards",
                "holds audio only and cannot be used with modality=face; set data.shards=null",
            ),
            (
                not (self.data.shards and self.cluster_aware.enabled),
                "data.shards",
                "cannot be used with cluster_aware.enabled=true: cluster-aware DINO cuts crops from a partner "
                "utterance drawn at random from its cluster, which a sequential stream of shards cannot serve; "
                "set data.shards=null to read the manifest's files",
            ),
            (self.crops.num_global >= 2, "crops.num_global", "DINO needs at least 2 global crops"),
            (self.crops.num_local >= 0, "crops.num_local", "must be >= 0"),
            (self.crops.global_seconds > 0, "crops.global_seconds", "must be positive"),
            (self.crops.local_seconds > 0, "crops.local_seconds", "must be positive"),
            *_augment_checks(self.augment),
            (self.encoder.name in ENCODERS, "encoder.name", f"must be one of {sorted(ENCODERS)}"),
            (self.encoder.channels > 0, "encoder.channels", "must be positive"),
            (self.encoder.embedding_dim > 0, "encoder.embedding_dim", "must be positive"),
            (self.dino.out_dim > 1, "dino.out_dim", "must be > 1"),
            (self.dino.head_layers >= 1, "dino.head_layers", "must be >= 1"),
            (self.dino.student_temp > 0, "dino.student_temp", "must be positive"),
            (self.dino.teacher_temp > 0, "dino.teacher_temp", "must be positive"),
            (self.dino.warmup_teacher_temp > 0, "dino.warmup_teacher_temp", "must be positive"),
            (0 <= self.dino.center_momentum < 1, "dino.center_momentum", "must be within [0, 1)"),
            (0 <= self.dino.momentum_teacher <= 1, "dino.momentum_teacher", "must be within [0, 1]"),
            (0 <= self.dino.momentum_teacher_end <= 1, "dino.momentum_teacher_end", "must be within [0, 1]"),
            (self.optim.epochs > 0, "optim.epochs", "must be positive"),
            *_optim_checks(self.optim),
            *_run_checks(self.run),
            (
                1 <= self.run.average_last_epochs <= self.optim.epochs,
                "run.average_last_epochs",
                "must be within [1, optim.epochs]",
            ),
            (
                0 <= self.cluster_aware.global_from_partner < num_global,
                "cluster_aware.global_from_partner",
                f"must be >= 0 and leave at least one global crop ({crops}.num_global) to the anchor utterance",
            ),
            (
                0 <= self.cluster_aware.local_from_partner <= num_local,
                "cluster_aware.local_from_partner",
                f"must be within [0, {crops}.num_local]",
            ),
            (
                len(self.cluster_aware.n_clusters) > 0 and min(self.cluster_aware.n_clusters) >= 1,
                "cluster_aware.n_clusters",
                "must be a non-empty list of positive cluster counts",
            ),
            (
                not self.cluster_aware.enabled or self.run.init_checkpoint is not None
                or self.cluster_aware.labels is not None,
                "run.init_checkpoint",
                "must name a DINO checkpoint.pt when cluster_aware.enabled (the clusters come from its teacher), "
                "unless cluster_aware.labels gives them",
            ),
            (self.cluster_aware.recluster_every_epochs >= 0, "cluster_aware.recluster_every_epochs", "must be >= 0"),
            (
                self.cluster_aware.labels is None or self.cluster_aware.recluster_every_epochs == 0,
                "cluster_aware.recluster_every_epochs",
                "must be 0 with cluster_aware.labels (clusters from a file are used as given, never re-clustered)",
            ),
            (self.cluster_aware.kmeans_iterations > 0, "cluster_aware.kmeans_iterations", "must be positive"),
        ]
        _raise_first_failure(self, checks)


_FRACTION = "0 < low <= high <= 1 (fractions of the frame's area)"


def _interval(bounds: list[float], high: float) -> bool:
    return len(bounds) == 2 and 0 < bounds[0] <= bounds[1] <= high


def _face_checks(face: FaceConfig) -> list[tuple[bool, str, str]]:
    """The face section's range checks (run for every modality: the defaults always pass)."""
    return [
        *_face_frames_checks(face.frames, "face.frames"),
        (face.crops.num_global >= 2, "face.crops.num_global", "DINO needs at least 2 global crops"),
        (face.crops.num_local >= 0, "face.crops.num_local", "must be >= 0"),
        (face.crops.global_size >= 8, "face.crops.global_size", "must be >= 8 pixels"),
        (face.crops.local_size >= 8, "face.crops.local_size", "must be >= 8 pixels"),
        (_interval(face.crops.global_scale, 1.0), "face.crops.global_scale", f"must be [low, high] with {_FRACTION}"),
        (_interval(face.crops.local_scale, 1.0), "face.crops.local_scale", f"must be [low, high] with {_FRACTION}"),
        *_face_augment_checks(face.augment, "face.augment"),
        (face.encoder.name in FACE_ENCODERS, "face.encoder.name", f"must be one of {sorted(FACE_ENCODERS)}"),
        (face.encoder.width >= 4, "face.encoder.width", "must be >= 4 channels"),
        (face.encoder.embedding_dim > 0, "face.encoder.embedding_dim", "must be positive"),
    ]


def _face_frames_checks(frames: FaceFramesConfig, prefix: str) -> list[tuple[bool, str, str]]:
    """Checks of a frames section (``face.frames`` in stage I, ``cross_modal.frames`` in stage II)."""
    return [
        (frames.rate > 0, f"{prefix}.rate", "must be positive (frames per second)"),
        (frames.size >= 8, f"{prefix}.size", "must be >= 8 pixels"),
        (0 < frames.crop <= 1, f"{prefix}.crop", "must be within (0, 1] (a fraction of the shorter side)"),
    ]


def _face_augment_checks(augment: FaceAugmentSettings, prefix: str) -> list[tuple[bool, str, str]]:
    """Checks of a face augmentation section (``face.augment`` or ``cross_modal.augment``)."""
    checks = [
        (_interval(augment.ratio, math.inf), f"{prefix}.ratio", "must be [low, high] with 0 < low <= high"),
        (_interval(augment.blur_sigma, math.inf), f"{prefix}.blur_sigma", "must be [low, high] with 0 < low <= high"),
        (0 <= augment.hue <= 0.5, f"{prefix}.hue", "must be within [0, 0.5]"),
    ]
    for name in ("flip_p", "jitter_p", "blur_p", "grey_p"):
        checks.append((0 <= getattr(augment, name) <= 1, f"{prefix}.{name}", "must be within [0, 1]"))
    for name in ("brightness", "contrast", "saturation"):
        checks.append((getattr(augment, name) >= 0, f"{prefix}.{name}", "must be >= 0"))
    return checks


@dataclass
class PseudoLabelConfig:
    """Where each round's training labels come from."""

    # kmeans: clusters of the current model's embeddings (the method). true_speakers: the corpus's
    # identity labels - ONLY for the clearly labelled supervised upper-bound reference, never the method.
    source: str = "kmeans"
    n_clusters: int = 6000
    kmeans_iterations: int = 20


@dataclass
class ClassifierConfig:
    """AAM-softmax over the pseudo classes."""

    margin: float = 0.2
    scale: float = 30.0


@dataclass
class GateConfig:
    """Which pseudo-labelled samples train: all (none), a fixed loss threshold (LGL) or DLG."""

    mode: str = "dlg"  # none | fixed | dlg
    fixed_threshold: float = 5.0  # loss units; only for mode=fixed
    warmup_epochs: int = 1  # epochs of each round trained without a gate (the classifier is new)
    use_log_loss: bool = True  # DLG fits its mixture to log-losses
    min_samples: int = 50
    min_separation: float = 2.0  # Ashman's D below which the mixture is one population (degenerate)
    # A fit whose low-loss component holds fewer of the samples is degenerate: DLG assumes most pseudo-
    # labels are right, and a minority low mode gated on dropped most of the data (docs/concepts/stage2.md).
    min_reliable_weight: float = 0.5


@dataclass
class CorrectionConfig:
    """Label correction: gated-out samples with a confident clean prediction train with that class."""

    enabled: bool = True
    start_epoch: int = 2  # epoch of each round (0-based) from which LC applies; must come after the warm-up
    temperature: float = 0.1
    confidence: float = 0.5


@dataclass
class RoundsConfig:
    """Extract -> cluster -> train, ``count`` times."""

    count: int = 2
    epochs: int = 10  # per round
    start_from: str = "previous"  # previous: each round starts from the last round's encoder; stage1: always from init_encoder


@dataclass
class PseudoOptimConfig:
    """AdamW with a per-step cosine learning rate and warm-up, restarted every round."""

    batch_size: int = 128  # per process
    lr: float = 1e-3
    min_lr: float = 1e-5
    warmup_epochs: float = 1.0
    weight_decay: float = 2e-5
    clip_grad: float = 5.0
    steps_per_epoch: int | None = None  # None: one pass over the training data per epoch


@dataclass
class CrossModalConfig:
    """Audio-visual stage II: the face encoder trains beside the speaker encoder on shared labels.

    Each round fuses the audio and face clusterings into one label per utterance
    (:mod:`avssl.pseudo.fusion`); both encoders train on it with their own AAM-softmax head, and the
    gate and the label correction look at both modalities (:mod:`avssl.pseudo.cross_modal`). The
    classifier, gate (warm-up, DLG fit settings), correction, rounds and optimiser sections apply to
    both modalities. Utterances without usable video train the audio side only.
    """

    enabled: bool = False
    init_face_encoder: str | None = None  # face encoder file of visual DINO (`avssl train`, modality=face)
    frames: FaceFramesConfig = field(default_factory=FaceFramesConfig)  # store, or decode on the fly
    # The training face crop: one random frame of the utterance per epoch, resized to the encoder file's
    # image size from a random crop of this fraction of the frame's area (the LC copy is the whole frame).
    crop_scale: list[float] = field(default_factory=lambda: [0.5, 1.0])
    augment: FaceAugmentSettings = field(default_factory=FaceAugmentSettings)
    fusion: str = "concat"  # concat (spherical k-means, any size) | affinity (kNN graph + average linkage)
    audio_weight: float = 0.5  # fused similarity w cos_audio + (1 - w) cos_face
    n_neighbors: int = 10  # fusion=affinity only
    gate: str = "joint"  # joint (one DLG on sqrt(audio * face) losses) | and (strict) | or (loose)
    face_weight: float = 0.5  # weight of the face posterior in label correction


@dataclass
class PseudoTrainConfig:
    """Everything a stage-II (pseudo-label training with DLG-LC) run reads.

    The encoder architecture and fbank settings are not repeated here: they travel inside the stage-I
    encoder file named by ``init_encoder``.
    """

    init_encoder: str = MISSING
    segment_seconds: float = 2.0  # one random segment per utterance per epoch
    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    labels: PseudoLabelConfig = field(default_factory=PseudoLabelConfig)
    classifier: ClassifierConfig = field(default_factory=ClassifierConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    correction: CorrectionConfig = field(default_factory=CorrectionConfig)
    rounds: RoundsConfig = field(default_factory=RoundsConfig)
    optim: PseudoOptimConfig = field(default_factory=PseudoOptimConfig)
    run: RunConfig = field(default_factory=RunConfig)
    cross_modal: CrossModalConfig = field(default_factory=CrossModalConfig)

    def validate(self) -> None:
        """Range checks a type cannot express; each message names the offending key."""
        checks: list[tuple[bool, str, str]] = [
            (self.segment_seconds > 0, "segment_seconds", "must be positive"),
            *_data_checks(self.data),
            *_augment_checks(self.augment),
            (self.labels.source in ("kmeans", "true_speakers"), "labels.source", "must be kmeans or true_speakers"),
            (self.labels.n_clusters >= 2, "labels.n_clusters", "must be >= 2"),
            (self.labels.kmeans_iterations > 0, "labels.kmeans_iterations", "must be positive"),
            (0 <= self.classifier.margin < 1.5, "classifier.margin", "must be within [0, 1.5) radians"),
            (self.classifier.scale > 0, "classifier.scale", "must be positive"),
            (self.gate.mode in ("none", "fixed", "dlg"), "gate.mode", "must be none, fixed or dlg"),
            (self.gate.fixed_threshold > 0, "gate.fixed_threshold", "must be positive"),
            (self.gate.warmup_epochs >= 0, "gate.warmup_epochs", "must be >= 0"),
            (self.gate.min_samples >= 2, "gate.min_samples", "must be >= 2"),
            (self.gate.min_separation >= 0, "gate.min_separation", "must be >= 0"),
            (0 <= self.gate.min_reliable_weight < 1, "gate.min_reliable_weight", "must be in [0, 1)"),
            (
                not self.correction.enabled or self.correction.start_epoch >= self.gate.warmup_epochs,
                "correction.start_epoch",
                "must not come before the end of gate.warmup_epochs (there is nothing to correct yet)",
            ),
            (self.correction.temperature > 0, "correction.temperature", "must be positive"),
            (0 <= self.correction.confidence < 1, "correction.confidence", "must be within [0, 1)"),
            (self.rounds.count >= 1, "rounds.count", "must be >= 1"),
            (self.rounds.epochs >= 1, "rounds.epochs", "must be >= 1"),
            (self.rounds.start_from in ("previous", "stage1"), "rounds.start_from", "must be previous or stage1"),
            *_optim_checks(self.optim),
            *_run_checks(self.run),
            *_cross_modal_checks(self.cross_modal),
        ]
        _raise_first_failure(self, checks)


def _cross_modal_checks(cross: CrossModalConfig) -> list[tuple[bool, str, str]]:
    """The cross_modal section's checks (run even when disabled: the defaults always pass)."""
    return [
        (
            not cross.enabled or bool(cross.init_face_encoder),
            "cross_modal.init_face_encoder",
            "must name a face encoder file (visual DINO's encoder.pt) when cross_modal.enabled=true",
        ),
        *_face_frames_checks(cross.frames, "cross_modal.frames"),
        (_interval(cross.crop_scale, 1.0), "cross_modal.crop_scale", f"must be [low, high] with {_FRACTION}"),
        *_face_augment_checks(cross.augment, "cross_modal.augment"),
        (cross.fusion in FUSIONS, "cross_modal.fusion", f"must be one of {', '.join(FUSIONS)}"),
        (0 <= cross.audio_weight <= 1, "cross_modal.audio_weight", "must be within [0, 1] (the face gets 1 - it)"),
        (cross.n_neighbors >= 1, "cross_modal.n_neighbors", "must be >= 1"),
        (cross.gate in CROSS_MODAL_GATES, "cross_modal.gate", f"must be one of {', '.join(CROSS_MODAL_GATES)}"),
        (0 <= cross.face_weight <= 1, "cross_modal.face_weight", "must be within [0, 1] (the audio gets 1 - it)"),
    ]


Check = tuple[bool, str, str]  # (passed, dotted config key, what the key must be)


def _raise_first_failure(config: Any, checks: list[Check]) -> None:
    """Raise ConfigError naming the first failed check's key, its rule and its value."""
    for ok, key, what in checks:
        if not ok:
            raise ConfigError(f"config key '{key}' {what} (got {_lookup(config, key)!r})")


def _data_checks(data: DataConfig) -> list[Check]:
    return [
        (data.sample_rate > 0, "data.sample_rate", "must be positive"),
        (data.num_workers >= 0, "data.num_workers", "must be >= 0"),
        (data.featurise_in in ("auto", "device", "workers"), "data.featurise_in", "must be auto, device or workers"),
        (data.shard_buffer >= 1, "data.shard_buffer", "must be >= 1"),
    ]


def _augment_checks(augment: AugmentConfig) -> list[Check]:
    checks: list[Check] = [
        (0.0 <= augment.prob <= 1.0, "augment.prob", "must be within [0, 1]"),
        (augment.reverb_weight >= 0, "augment.reverb_weight", "must be >= 0"),
        (augment.noise_weight >= 0, "augment.noise_weight", "must be >= 0"),
    ]
    for category, bounds in augment.snr_db.items():
        ok = len(bounds) == 2 and bounds[0] <= bounds[1]
        checks.append((ok, f"augment.snr_db.{category}", "must be [low, high] with low <= high"))
    return checks


def _optim_checks(optim: OptimConfig | PseudoOptimConfig) -> list[Check]:
    """The keys stage I's SGD and stage II's AdamW sections share."""
    return [
        (optim.batch_size > 0, "optim.batch_size", "must be positive"),
        (optim.lr > 0, "optim.lr", "must be positive"),
        (optim.min_lr >= 0, "optim.min_lr", "must be >= 0"),
        (optim.warmup_epochs >= 0, "optim.warmup_epochs", "must be >= 0"),
        (optim.clip_grad >= 0, "optim.clip_grad", "must be >= 0 (0 disables clipping)"),
        (optim.steps_per_epoch is None or optim.steps_per_epoch > 0, "optim.steps_per_epoch", "must be positive or null"),
    ]


def _run_checks(run: RunConfig) -> list[Check]:
    return [
        (run.log_every > 0, "run.log_every", "must be positive"),
        (run.save_every_epochs > 0, "run.save_every_epochs", "must be positive"),
        (run.mixed_precision in ("no", "bf16", "fp16"), "run.mixed_precision", "must be one of no, bf16, fp16"),
    ]


# Encoder names the config accepts; the model factory (avssl.models.build_encoder) knows the same set.
ENCODERS = ("ecapa", "resnet34")
# The same for face encoders (avssl.models.face_resnet.FACE_ENCODERS), and stage I's modalities.
FACE_ENCODERS = ("face_resnet18",)
MODALITIES = ("audio", "face")
# Stage II's cross-modal choices (avssl.pseudo.fusion, avssl.pseudo.cross_modal.GATE_MODES).
FUSIONS = ("concat", "affinity")
CROSS_MODAL_GATES = ("joint", "and", "or")


def _lookup(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = obj.get(part) if isinstance(obj, dict) else getattr(obj, part, None)
    return obj


def load_config(schema: type[T], path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> T:
    """Load ``path`` (YAML) into ``schema``, apply ``key=value`` overrides, validate, return the object.

    Precedence: schema defaults < file < overrides. Raises :class:`ConfigError` for a missing or
    unparsable file, an unknown key, a value of the wrong type, a required key left unset, or a value
    out of range, always naming the key (and the file when the file is at fault).
    """
    base = OmegaConf.structured(schema)
    source = "defaults"
    if path is not None:
        path = Path(path)
        source = str(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path} (give the path to a YAML file, e.g. configs/demo/dino.yaml)")
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML: {err}") from err
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: the top level must be a mapping of sections, got {type(loaded).__name__}")
        base = _merge(base, OmegaConf.create(loaded), source)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' is not of the form key=value (e.g. optim.epochs=10)")
        key, value = item.split("=", 1)
        if not _has_key(base, key):
            raise ConfigError(f"override '{item}': unknown config key '{key}'")
        base = _merge(base, OmegaConf.from_dotlist([item]), f"override '{item}'")
    missing = sorted(OmegaConf.missing_keys(base))
    if missing:
        raise ConfigError(f"{source}: required config key(s) not set: {', '.join(missing)} (set them in the file or as key=value)")
    try:
        config = OmegaConf.to_object(base)
    except OmegaConfBaseException as err:
        raise ConfigError(f"{source}: {_describe(err)}") from err
    if hasattr(config, "validate"):
        config.validate()
    return config  # type: ignore[return-value]


def _has_key(config: Any, dotted: str) -> bool:
    """Whether ``dotted`` names an existing key (set or still MISSING) of a config node."""
    node = config
    for part in dotted.split("."):
        if not OmegaConf.is_dict(node) or part not in node.keys():
            return False
        node = node._get_node(part)
    return True


def _merge(base: Any, update: Any, source: str) -> Any:
    try:
        return OmegaConf.merge(base, update)
    except OmegaConfBaseException as err:
        raise ConfigError(f"{source}: {_describe(err)}") from err


def _describe(err: OmegaConfBaseException) -> str:
    """OmegaConf's message, reduced to its first line, with the full dotted key in front."""
    message = str(err).splitlines()[0]
    key = getattr(err, "full_key", None)
    if key:
        return f"config key '{key}': {message}"
    return message


def to_yaml(config: Any) -> str:
    """The resolved config as YAML, the form saved beside every stage's outputs."""
    return OmegaConf.to_yaml(OmegaConf.structured(config))


def save_config(config: Any, path: str | Path) -> Path:
    """Write the resolved config atomically (so a stage's folder always says how it was made)."""
    return atomic_write_text(path, to_yaml(config))


def as_dict(config: Any) -> dict[str, Any]:
    """A plain nested dict of a config dataclass (for JSON reports and TensorBoard hparams)."""
    if is_dataclass(config):
        return {f.name: as_dict(getattr(config, f.name)) for f in fields(config)}
    if isinstance(config, dict):
        return {k: as_dict(v) for k, v in config.items()}
    if isinstance(config, list):
        return [as_dict(v) for v in config]
    return config
