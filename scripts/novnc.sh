#!/usr/bin/env bash
# Install noVNC (the npm package @novnc/novnc: its core/ and vendor/
# modules) where the console proxy serves it from.
#
#   scripts/novnc.sh [DIR]      (default .loom/novnc, console.novnc_dir's default for `loom up`)
#
# Prints the directory. Idempotent: a directory holding this version is
# left as it is. Needs npm (the registry, nothing else).
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=1.7.0
out=$(realpath -m "${1:-.loom/novnc}")
if [ "$(cat "$out/VERSION.loom" 2>/dev/null)" = "$VERSION" ] && [ -f "$out/core/rfb.js" ]; then
  echo "$out"
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "@novnc/novnc@$VERSION" >/dev/null)
tar -xzf "$work"/novnc-novnc-"$VERSION".tgz -C "$work"
mkdir -p "$(dirname "$out")"
rm -rf "$out.tmp"
mv "$work/package" "$out.tmp"
echo "$VERSION" > "$out.tmp/VERSION.loom"
rm -rf "$out"
mv "$out.tmp" "$out"
echo "$out"
