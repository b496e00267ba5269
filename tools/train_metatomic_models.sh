#!/usr/bin/env bash
# Train and export the tiny metatomic test models tests/data/metatomic/{pet,mace}.pt.
#
# 1. The training set: the small built-in benchmark plus two rattled copies, energies from
#    CHGNet 0.3.0 (tools/metatomic/dataset.py, run in the project's environment).
# 2. metatrain 2026.4.1 trains a tiny PET and a tiny MACE for 20 epochs each
#    (tools/metatomic/{pet,mace}.yaml; float64, so energies compare to 1e-6 eV/atom)
#    and `mtt export` writes the model files with tools/metatomic/*-metadata.yaml.
#
# metatrain's MACE extra pins e3nn 0.4.4 and mace-torch 0.3.14, which clash with SevenNet's
# e3nn, so metatrain lives in its own virtual environment OUTSIDE the repository
# ($METATRAIN_VENV, default ~/.cache/latentatlas/metatrain-venv), created on first use.
# The exported files need only metatomic-torch to run. A few minutes on two cores.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PY:-$ROOT/.venv/bin/python}"
VENV="${METATRAIN_VENV:-$HOME/.cache/latentatlas/metatrain-venv}"
OUT="${OUT:-$ROOT/tests/data/metatomic}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"  # more threads than free cores slows PET down tenfold

if [ ! -x "$VENV/bin/mtt" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --upgrade pip
    "$VENV/bin/pip" install --quiet torch==2.13.0  # first, so metatrain keeps this torch
    "$VENV/bin/pip" install --quiet "metatrain[mace]==2026.4.1" "metatomic-torch==0.1.19" "metatensor-torch==0.10.8" "vesin==0.6.2"
fi

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
PYTHONPATH="$ROOT/lib${PYTHONPATH:+:$PYTHONPATH}" "$PY" "$ROOT/tools/metatomic/dataset.py" "$WORK/train.xyz"
cp "$ROOT"/tools/metatomic/*.yaml "$WORK/"
mkdir -p "$OUT"
cd "$WORK"
for model in pet mace; do
    start=$SECONDS
    "$VENV/bin/mtt" train "$model.yaml" -o "$model-train.pt" > "$model.log" 2>&1 || { tail -40 "$model.log"; exit 1; }
    "$VENV/bin/mtt" export "$model-train.ckpt" -o "$OUT/$model.pt" -m "$model-metadata.yaml" >> "$model.log" 2>&1 || { tail -40 "$model.log"; exit 1; }
    grep "Epoch" "$model.log" | tail -1 | sed 's/.*Epoch/Epoch/'
    echo "$model: trained and exported in $((SECONDS - start)) s -> $OUT/$model.pt ($(du -k "$OUT/$model.pt" | cut -f1) kB)"
done
