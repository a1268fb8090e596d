#!/usr/bin/env bash
# CI: the committed editor bundle is exactly what `make assets` builds.
# Installs the locked packages (npm ci) into a temporary copy of the front-end
# sources, builds there, and compares byte for byte with
# src/safexam/web/static/vendor/codemirror.js. Leaves the working tree alone.
# Exits 0 with a message when Node.js is not installed (nothing to check with).
set -euo pipefail
cd "$(dirname "$0")/.."
committed=src/safexam/web/static/vendor/codemirror.js

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "check-editor-bundle: SKIPPED: Node.js/npm are not installed, so the bundle cannot be rebuilt"
    exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/scripts" "$work/assets"
cp package.json package-lock.json "$work/"
cp scripts/build-editor.sh "$work/scripts/"
cp -r assets/editor "$work/assets/"
(cd "$work" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
"$work/scripts/build-editor.sh" "$work/codemirror.js"

if cmp -s "$work/codemirror.js" "$committed"; then
    echo "check-editor-bundle: OK ($committed is what make assets builds; $(gzip -9 -c "$committed" | wc -c) bytes gzipped)"
else
    echo "check-editor-bundle: FAILED: $committed differs from a fresh build; run make assets and commit" >&2
    exit 1
fi
