# Sourced by gpu-check.sh (and by hand before running a `cuda` build of the agent):
# puts the CUDA libraries such a build links (cuBLAS, cuRAND, the runtime; the driver's
# libcuda) on LD_LIBRARY_PATH, from the toolkit or, failing that, from wherever a
# Python wheel installed them.
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib \
    /usr/local/nvidia/lib64 /usr/local/nvidia/lib; do
    [ -d "$d" ] && export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$d"
done
ntx_has_lib() {
    ldconfig -p | grep -q "$1" && return 0
    local IFS=:
    for d in $LD_LIBRARY_PATH; do [ -e "$d/$1" ] && return 0; done
    return 1
}
for lib in libcublas.so.13 libcurand.so.10 libcudart.so.13; do
    if ! ntx_has_lib "$lib"; then
        d=$(find /usr /opt -name "$lib" -printf '%h\n' 2>/dev/null | head -1)
        [ -n "$d" ] && export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}$d"
    fi
done
