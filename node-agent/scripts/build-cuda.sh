#!/usr/bin/env bash
# Builds `ntx` and `ntx-embed` with candle's `cuda` feature on a machine that has no GPU
# and no CUDA toolkit: the toolkit (CUDA 13.0: nvcc, headers, cuBLAS, cuRAND, NVRTC, the
# runtime) comes from NVIDIA's PyPI wheels, and the driver library the binaries link
# (libcuda.so.1, which only a GPU machine's driver provides) from a link-time stub made
# of the driver functions cudarc declares. The binaries then run on a machine with a
# CUDA 13 driver and toolkit (node-agent/scripts/gpu-env.sh finds the libraries there).
#
#   node-agent/scripts/build-cuda.sh            # GPUs of compute capability 9.0 (H100/H200)
#   CUDA_COMPUTE_CAP=80 node-agent/scripts/build-cuda.sh
#
# Needs python3 with pip, gcc/g++ and network access to PyPI and crates.io. The toolkit
# goes to $NTX_CUDA_CACHE (default ~/.cache/ntx-escrow/cuda13), the build to
# $CARGO_TARGET_DIR (default target-cuda/ in the repository).
set -euo pipefail
cd "$(dirname "$0")/../.."
cache=${NTX_CUDA_CACHE:-$HOME/.cache/ntx-escrow/cuda13}
root=$cache/root/nvidia/cu13

if [ ! -x "$root/bin/nvcc" ]; then
    echo "fetching the CUDA 13.0 toolkit wheels into $cache"
    mkdir -p "$cache/wheels" "$cache/root"
    python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
        --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$cache/wheels" \
        "nvidia-cuda-nvcc==13.0.*" "nvidia-cuda-runtime==13.0.*" "nvidia-cuda-nvrtc==13.0.*" \
        "nvidia-cuda-crt==13.0.*" "nvidia-nvvm==13.0.*" "nvidia-cuda-cccl==13.0.*" \
        "nvidia-cublas==13.0.*" "nvidia-curand==10.4.*"
    for w in "$cache"/wheels/*.whl; do unzip -qo "$w" -d "$cache/root"; done
    # The unversioned names the linker looks for.
    (cd "$root/lib" && for l in cublas cublasLt cudart; do ln -sf "lib$l.so.13" "lib$l.so"; done &&
        ln -sf libcurand.so.10 libcurand.so && ln -sf libnvrtc.so.13 libnvrtc.so)
fi

if [ ! -e "$root/lib/stubs/libcuda.so" ]; then
    echo "making the link-time stub of libcuda.so.1"
    cargo fetch --quiet
    version=$(grep -A1 '^name = "cudarc"$' Cargo.lock | sed -n 's/^version = "\(.*\)"$/\1/p')
    sys=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-"$version"/src/driver/sys | head -1)
    mkdir -p "$root/lib/stubs"
    grep -oE '^\s+fn cu[A-Za-z0-9_]+\(' "$sys/mod.rs" | sed -E 's/.*fn (cu[A-Za-z0-9_]+)\(/\1/' |
        sort -u | awk '{print "int " $1 "(void) { return 999; }"}' >"$root/lib/stubs/cuda_stub.c"
    gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$root/lib/stubs/libcuda.so" "$root/lib/stubs/cuda_stub.c"
fi

export CUDA_HOME=$root
export PATH=$root/bin:$PATH
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
export LIBRARY_PATH=$root/lib:$root/lib/stubs
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target-cuda}
cargo build --release --features cuda --bin ntx
cargo build --release -p ntx-node-agent --features cuda --bin ntx-embed
echo "built: $CARGO_TARGET_DIR/release/ntx and $CARGO_TARGET_DIR/release/ntx-embed"
