#!/usr/bin/env bash
# VoxCeleb recipe: from the downloaded archives to what training and evaluation read (manifests,
# validated trial lists, face frames, MUSAN/RIR lists, tar shards). Trains on VoxCeleb2 dev, tests on
# VoxCeleb1. Run from the repository root with the virtual environment active; needs nothing but the
# avssl command (PyAV bundles FFmpeg's decoders, so no ffmpeg binary). Nothing is downloaded.
#
# Usage: data_prep/voxceleb/run.sh [--stage N] [--stop_stage N] [--data DIR] [--downloads DIR] [--md5 FILE]
#          [--extracted DIR] [--trials PATH] [--nj N] [--shard I/N] [--utts_per_shard N]
#   stage 1  avssl voxceleb archives   verify (--md5) and extract --downloads into --extracted    [slices]
#   stage 2  avssl voxceleb convert    VoxCeleb2 dev m4a -> 16 kHz mono wav                         [slices]
#   stage 3  avssl voxceleb layout     link VoxCeleb1, VoxCeleb2 and the trial lists into one tree  [once]
#   stage 4  avssl prepare --shard     probe every recording (slice --shard, or all as slice 0/1)   [slices]
#   stage 5  avssl prepare --merge     manifests, validated trial lists, prepare_report.json        [once]
#   stage 6  avssl prepare-faces       face frames of the dev face tracks                           [slices]
#   stage 7  avssl voxceleb augment    6 s MUSAN pieces, mono RIRs, noise.tsv and rir.tsv           [slices]
#   stage 8  avssl shards              dev audio packed into tar shards, shards.tsv                 [slices]
# Outputs go below --data (default data/voxceleb). Already unzipped corpora: put vox1/ (holding wav/),
# vox2/ (holding dev/aac, dev/mp4), musan/ and RIRS_NOISES/ in --extracted (links are fine), give
# --trials, and start at --stage 2. Array jobs: run each [slices] stage once per slice with --shard I/N
# (e.g. --shard "${SLURM_ARRAY_TASK_ID}/16"), each [once] stage in one job without --shard; a stage
# starts when the one before has finished in every slice. After an array of stage 7 or 8, run that stage
# once more without --shard: it then only writes the lists or the index, which the slices leave to
# whichever finds all work done. Every stage is resumable and idempotent: re-run it.
set -euo pipefail

stage=1
stop_stage=8
data=data/voxceleb   # every output goes below this folder
downloads=           # default ${data}/downloads: the archives as downloaded, with trial lists and meta
md5=                 # md5sum list of the downloads; empty: archives are extracted unverified
extracted=           # default ${data}/extracted: stage 1 writes it, or holds your unzipped corpora
trials=              # default ${downloads}: trial-list files, or a folder holding the official ones
nj=                  # processes per job; empty: every usable core
shard=               # I/N: this array job's slice of the [slices] stages; empty: the whole work
utts_per_shard=1000  # utterances per training tar shard (stage 8)

while [[ $# -gt 0 ]]; do
  case "$1" in
    --stage | --stop_stage | --data | --downloads | --md5 | --extracted | --trials | --nj | --shard | --utts_per_shard)
      [[ $# -ge 2 ]] || { echo "$0: $1 needs a value" >&2; exit 1; }
      printf -v "${1#--}" '%s' "$2"
      shift 2
      ;;
    -h | --help)
      sed -n '2,/^set /p' "$0" | grep '^#' | cut -c3-
      exit 0
      ;;
    *)
      echo "$0: unknown option '$1' (see --help)" >&2
      exit 1
      ;;
  esac
done

downloads=${downloads:-${data}/downloads}
extracted=${extracted:-${data}/extracted}
trials=${trials:-${downloads}}
vox2_wav=${data}/vox2_dev_wav
corpus=${data}/corpus
prepared=${data}/prepared
faces=${data}/faces
augment=${data}/augment
shards=${data}/shards

if ! command -v avssl > /dev/null; then
  echo "$0: the avssl command is not on PATH; activate the environment (source .venv/bin/activate)" >&2
  exit 1
fi
if [[ -n ${shard} ]]; then
  for once in 3 5; do
    if [[ ${stage} -le ${once} && ${stop_stage} -ge ${once} ]]; then
      echo "$0: stage ${once} runs once, not per slice: with --shard, choose [slices] stages only" \
        "(1 2 4 6 7 8), e.g. --stage 4 --stop_stage 4, and run stage ${once} without --shard" >&2
      exit 1
    fi
  done
fi

if [[ ${stage} -le 1 && ${stop_stage} -ge 1 ]]; then
  echo "stage 1: verify and extract ${downloads} into ${extracted}"
  avssl voxceleb archives "${downloads}" "${extracted}" ${md5:+--md5 "${md5}"} \
    ${nj:+--workers "${nj}"} ${shard:+--shard "${shard}"}
fi

if [[ ${stage} -le 2 && ${stop_stage} -ge 2 ]]; then
  echo "stage 2: convert ${extracted}/vox2/dev/aac into ${vox2_wav}"
  avssl voxceleb convert "${extracted}/vox2/dev/aac" "${vox2_wav}" \
    ${nj:+--workers "${nj}"} ${shard:+--shard "${shard}"}
fi

if [[ ${stage} -le 3 && ${stop_stage} -ge 3 ]]; then
  echo "stage 3: link the corpora and trial lists into ${corpus}"
  avssl voxceleb layout "${corpus}" --vox1 "${extracted}/vox1" --vox2 "${extracted}/vox2" \
    --vox2-audio "${vox2_wav}" --trials "${trials}"
fi

if [[ ${stage} -le 4 && ${stop_stage} -ge 4 ]]; then
  echo "stage 4: probe slice ${shard:-0/1} of ${corpus} into ${prepared}/parts"
  avssl prepare "${corpus}" "${prepared}" --shard "${shard:-0/1}" ${nj:+--workers "${nj}"}
fi

if [[ ${stage} -le 5 && ${stop_stage} -ge 5 ]]; then
  echo "stage 5: merge the probed slices into manifests and trial lists in ${prepared}"
  avssl prepare "${corpus}" "${prepared}" --merge
fi

if [[ ${stage} -le 6 && ${stop_stage} -ge 6 ]]; then
  echo "stage 6: face frames of ${prepared}/manifests/dev.tsv into ${faces}"
  avssl prepare-faces "${prepared}/manifests/dev.tsv" "${faces}" \
    ${nj:+--workers "${nj}"} ${shard:+--shard "${shard}"}
fi

if [[ ${stage} -le 7 && ${stop_stage} -ge 7 ]]; then
  echo "stage 7: MUSAN and RIRS_NOISES into ${augment}"
  avssl voxceleb augment "${augment}" --musan "${extracted}/musan" --rirs "${extracted}/RIRS_NOISES" \
    ${nj:+--workers "${nj}"} ${shard:+--shard "${shard}"}
fi

if [[ ${stage} -le 8 && ${stop_stage} -ge 8 ]]; then
  echo "stage 8: pack ${prepared}/manifests/dev.tsv into tar shards in ${shards}"
  avssl shards "${prepared}/manifests/dev.tsv" "${shards}" --utterances-per-shard "${utts_per_shard}" \
    ${nj:+--workers "${nj}"} ${shard:+--shard "${shard}"}
fi
