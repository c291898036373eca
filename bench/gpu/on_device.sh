#!/usr/bin/env bash
# On the GPU host, from the tree's root (after bench/gpu/pack.sh filled .gpu/ on the development machine):
# unpacks the Vulkan/EGL loaders and deno from .gpu/, points Vulkan and EGL at the NVIDIA driver, prints
# the GPU and the WebGPU adapter Deno sees, then runs "$@" (e.g. bash bench/gpu/run.sh).
set -uo pipefail
cd "$(dirname "$0")/../.."
[ -f .gpu/deno.xz ] || { echo "on_device.sh: no .gpu/deno.xz; run bash bench/gpu/pack.sh first and carry .gpu" >&2; exit 1; }

for deb in .gpu/debs/*.deb; do dpkg -x "$deb" /; done
ldconfig

bin=/tmp/bert-webgpu-bin
mkdir -p "$bin"
if command -v xz >/dev/null 2>&1; then
  xz -dc .gpu/deno.xz >"$bin/deno"
else # the hosts have Python even when they lack xz
  python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' \
    .gpu/deno.xz "$bin/deno"
fi
chmod +x "$bin/deno"
export PATH="$bin:$PATH"
[ -d .gpu/deno_dir ] && export DENO_DIR="${DENO_DIR:-$PWD/.gpu/deno_dir}"

vulkan_icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
if [ -f "$vulkan_icd" ]; then export VK_DRIVER_FILES=$vulkan_icd VK_ICD_FILENAMES=$vulkan_icd; fi
egl_vendor=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
if [ -f "$egl_vendor" ]; then export __EGL_VENDOR_LIBRARY_FILENAMES=$egl_vendor; fi

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
deno eval --no-lock 'const a = await navigator.gpu.requestAdapter({ powerPreference: "high-performance" });
const info = a?.info;
console.log("webgpu adapter:", a ? JSON.stringify({ vendor: info.vendor, architecture: info.architecture,
  description: info.description, fallback: info.isFallbackAdapter, features: [...a.features] }) : "none");' || true
for f in /usr/local/nvidia/share/vulkan/icd.d/*; do [ -e "$f" ] && echo "vulkan icd: $f"; done

if [ $# -gt 0 ]; then exec "$@"; fi
