#!/usr/bin/env bash
# Synthetic corpus recipe: generate the embedded audio-visual corpus, then prepare its manifests and
# trial lists. Run from the repository root with the virtual environment active.
#
# Usage: data_prep/synth/run.sh [--stage N] [--stop_stage N] [--corpus DIR] [--data DIR] [--workers N]
#   stage 1  avssl synth:   write the corpus (VoxCeleb layout) to --corpus
#   stage 2  avssl prepare: probe it and write manifests, trials and prepare_report.json to --data
set -euo pipefail

stage=1
stop_stage=2
corpus=data/synth/corpus
data=data/synth/prepared
workers=  # empty: all cores

while [[ $# -gt 0 ]]; do
  case "$1" in
    --stage | --stop_stage | --corpus | --data | --workers)
      [[ $# -ge 2 ]] || { echo "$0: $1 needs a value" >&2; exit 1; }
      printf -v "${1#--}" '%s' "$2"
      shift 2
      ;;
    -h | --help)
      sed -n '2,7p' "$0" | cut -c3-
      exit 0
      ;;
    *)
      echo "$0: unknown option '$1' (see --help)" >&2
      exit 1
      ;;
  esac
done

if ! command -v avssl > /dev/null; then
  echo "$0: the avssl command is not on PATH; activate the environment (source .venv/bin/activate)" >&2
  exit 1
fi

if [[ ${stage} -le 1 && ${stop_stage} -ge 1 ]]; then
  echo "stage 1: generate the synthetic corpus in ${corpus}"
  avssl synth "${corpus}" --size demo --seed 0
fi

if [[ ${stage} -le 2 && ${stop_stage} -ge 2 ]]; then
  echo "stage 2: prepare ${corpus} into ${data}"
  avssl prepare "${corpus}" "${data}" ${workers:+--workers "${workers}"}
fi
