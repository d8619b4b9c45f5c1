#!/usr/bin/env bash
# Build the Ollama server the integration tests run, once per machine, from its Go module.
#
# v0.24.0 is the last release whose native code (llama.cpp, ggml's CPU backend) is part of the
# Go module and compiles through cgo; later releases fetch their runtime from a web host at
# build time, which cannot work offline. Go's module zips leave out every `vendor/` folder, so
# the three header-only libraries llama.cpp vendors come from package registries instead:
# nlohmann/json and stb_image from Debian (`make sysdeps`), miniaudio from its PyPI sdist.
#
# Prints the binary's path on its last line. OLLAMA_BIN set: that binary is used, nothing built.
set -euo pipefail

VERSION="${OLLAMA_VERSION:-0.24.0}"
MINIAUDIO_SDIST="miniaudio==1.71"   # bundles miniaudio 0.11.25, the API llama.cpp's mtmd uses
TOOLS="${OLLAMA_TUNE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/ollama-tune/tools}"
DEST="$TOOLS/ollama-v$VERSION"
PYTHON="${PYTHON:-python3}"

if [ -n "${OLLAMA_BIN:-}" ]; then
  "$OLLAMA_BIN" --version >&2 || { echo "OLLAMA_BIN=$OLLAMA_BIN does not run" >&2; exit 1; }
  echo "$OLLAMA_BIN"
  exit 0
fi
if [ -x "$DEST/ollama" ] && "$DEST/ollama" --version >/dev/null 2>&1; then
  echo "$DEST/ollama"
  exit 0
fi

command -v go >/dev/null || { echo "Go is needed to build Ollama (https://go.dev/dl)" >&2; exit 1; }
for header in /usr/include/nlohmann/json_fwd.hpp /usr/include/stb/stb_image.h; do
  [ -f "$header" ] || { echo "missing $header: run 'make sysdeps'" >&2; exit 1; }
done

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# A fixed include folder: CGO_CPPFLAGS is part of Go's build-cache key, so a rebuild reuses it.
include="$TOOLS/include-v$VERSION"
mkdir -p "$include/miniaudio" "$work/bin"
if [ ! -f "$include/miniaudio/miniaudio.h" ]; then
  "$PYTHON" -m pip download -q --no-deps --no-binary :all: -d "$work/sdist" "$MINIAUDIO_SDIST" >&2
  tar -xzf "$work"/sdist/miniaudio-*.tar.gz -C "$work/sdist"
  cp "$work"/sdist/miniaudio-*/miniaudio/miniaudio.h "$include/miniaudio/"
fi

echo "Building Ollama v$VERSION from its Go module (once per machine; minutes on 2 cores)..." >&2
start=$(date +%s)
# -X sets the version the server reports (`/api/version`), as Ollama's own release build does.
CGO_CPPFLAGS="-I$include" GOBIN="$work/bin" \
  go install -ldflags "-X=github.com/ollama/ollama/version.Version=$VERSION" \
  "github.com/ollama/ollama@v$VERSION" >&2
# Atomic: a half-built binary never lands where the tests look.
rm -rf "$DEST.tmp" && mkdir -p "$DEST.tmp" && mv "$work/bin/ollama" "$DEST.tmp/ollama"
rm -rf "$DEST" && mv "$DEST.tmp" "$DEST"
echo "Built $DEST/ollama in $(( $(date +%s) - start )) s" >&2
echo "$DEST/ollama"
