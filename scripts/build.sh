#!/usr/bin/env bash
# Builds dist/tapwire: the BPF object (CO-RE, against the running kernel's BTF), the
# TypeScript twin of its shared structs, the protobuf TypeScript, and one executable
# with the BPF object embedded. Steps whose inputs did not change are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"
mkdir -p build dist

case "$(uname -m)" in
  x86_64) arch=x86 ;;
  aarch64) arch=arm64 ;;
  *) echo "build: unsupported architecture $(uname -m)" >&2; exit 2 ;;
esac

# vmlinux.h: every kernel type, from the BTF of the running kernel (scripts/gen-vmlinux.sh).
[ -s build/vmlinux.h ] || bash scripts/gen-vmlinux.sh build/vmlinux.h

obj=build/tapwire.bpf.o
if [ ! -f "$obj" ] || [ -n "$(find bpf build/vmlinux.h -newer "$obj" -print -quit)" ]; then
  echo "build: compiling bpf/tapwire.bpf.c" >&2
  clang -g -O2 -target bpf "-D__TARGET_ARCH_$arch" -Wall -Werror -Ibuild -Ibpf \
    -c bpf/tapwire.bpf.c -o "$obj.tmp"
  # Keep BTF (CO-RE needs it), drop DWARF.
  llvm-strip -g "$obj.tmp"
  mv "$obj.tmp" "$obj"
fi

layout=src/bpf/gen/layout.ts
if [ ! -f "$layout" ] || [ "$obj" -nt "$layout" ] || [ scripts/gen-layout.ts -nt "$layout" ]; then
  bun scripts/gen-layout.ts "$obj" bpf/tapwire.h "$layout"
fi

if [ ! -d src/gen ] || [ -n "$(find proto buf.gen.yaml -newer src/gen -print -quit)" ]; then
  buf generate
  touch src/gen
fi

# The web page (web/): one browser bundle plus its HTML and CSS, embedded in the executable
# by src/api/web-page.ts.
# (.asset: a name that no loader or type checker takes for code.)
web=build/web/app.js.asset
if [ ! -f "$web" ] || [ -n "$(find web src/gen package.json -newer "$web" -print -quit)" ]; then
  rm -rf build/web && mkdir -p build/web
  cp web/index.html build/web/index.html.asset
  cp web/app.css build/web/app.css.asset
  bun build web/src/main.tsx --target browser --minify --outfile build/web/app.js >/dev/null
  mv build/web/app.js "$web"
fi

bun build --compile src/cli/main.ts --outfile dist/tapwire >/dev/null
echo "build: dist/tapwire ($(du -h dist/tapwire | cut -f1))" >&2
