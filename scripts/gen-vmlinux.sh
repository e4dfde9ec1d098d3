#!/usr/bin/env bash
# Writes vmlinux.h (every type of the running kernel, as C) from its BTF.
# CO-RE relocates field accesses at load time, so an object built against this header
# runs on other kernels with BTF too.
set -euo pipefail
out=${1:-build/vmlinux.h}
btf=/sys/kernel/btf/vmlinux
if [ ! -r "$btf" ]; then
  echo "gen-vmlinux: $btf is missing: this kernel has no BTF (CONFIG_DEBUG_INFO_BTF)" >&2
  exit 2
fi
mkdir -p "$(dirname "$out")"
bpftool btf dump file "$btf" format c > "$out.tmp"
mv "$out.tmp" "$out"
