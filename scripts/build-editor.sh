#!/usr/bin/env bash
# Bundles the code editor (assets/editor/editor.js, CodeMirror 6 from node_modules)
# into one minified ES module. Usage: scripts/build-editor.sh [outfile]
# (default: the committed src/safexam/web/static/vendor/codemirror.js).
# Needs `npm ci` first. The same inputs and esbuild version give the same bytes,
# which scripts/check-editor-bundle.sh relies on.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-src/safexam/web/static/vendor/codemirror.js}
node_modules/.bin/esbuild assets/editor/editor.js \
    --bundle --format=esm --minify --target=es2020 \
    --legal-comments=eof --charset=utf8 --log-level=warning \
    --banner:js="/* The exam's code editor: CodeMirror 6 and the Lezer parsers (MIT licence; versions in package-lock.json), bundled from assets/editor/editor.js by scripts/build-editor.sh. */" \
    --outfile="$out"
