#!/usr/bin/env bash
# Packs what an offline NVIDIA GPU host lacks into .gpu/ (git-ignored), on the development machine:
#   .gpu/debs/      the Vulkan and EGL loader packages (Debian, amd64), which Deno's WebGPU loads at run time
#   .gpu/deno.xz    this machine's deno binary, xz-compressed (about 31 MB)
#   .gpu/deno_dir/  the npm packages the GPU entry points import (no lockfile, so only those: about 12 MB)
# Usage, from the repository root, with deno on PATH:  bash bench/gpu/pack.sh
# Then on the GPU host, from the tree's root:          bash bench/gpu/on_device.sh <command>
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p .gpu/debs

if ! ls .gpu/debs/libvulkan1_*.deb >/dev/null 2>&1; then
  lists=$(mktemp -d)
  mkdir -p "$lists/partial"
  apt_amd64=(-o APT::Architecture=amd64 -o APT::Architectures=amd64 -o "Dir::State::Lists=$lists")
  apt-get "${apt_amd64[@]}" update >/dev/null
  (cd .gpu/debs && apt-get "${apt_amd64[@]}" download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 >/dev/null)
  rm -rf "$lists"
fi

# The deno on PATH may be npm's launcher script; the host needs the ELF binary itself.
launcher=$(command -v deno) || { echo "pack.sh: no deno on PATH (npm install -g deno@2.9.6)" >&2; exit 1; }
binary=$(readlink -f "$launcher")
if ! head -c 4 "$binary" | grep -q ELF; then
  binary=$(find "$(npm root -g)" -path '*@deno/linux-x64-glibc/deno' -type f 2>/dev/null | head -1)
fi
if [ -z "$binary" ] || ! head -c 4 "$binary" | grep -q ELF; then
  echo "pack.sh: cannot find the deno executable behind $launcher" >&2
  exit 1
fi
if [ ! -f .gpu/deno.xz ] || [ "$binary" -nt .gpu/deno.xz ]; then xz -T2 -6 -c "$binary" >.gpu/deno.xz; fi

# Without the lockfile deno caches only what these entry points import, not every locked package.
DENO_DIR=.gpu/deno_dir deno cache --no-lock bench/main.ts bench/gpu/parity.ts

du -sh .gpu
echo "tree + .gpu must stay under 64 MiB; on the GPU host run: bash bench/gpu/on_device.sh <command>"
