#!/usr/bin/env bash
# Build the filter module of another commit (default: the parent of HEAD)
# into build/baseline-<rev>.wasm, for S2B's side-by-side comparison.
# Prints the module's path. Uses a throw-away git worktree.
set -euo pipefail
cd "$(dirname "$0")/.."
rev=$(git rev-parse --short "${1:-HEAD~1}")
out="build/baseline-$rev.wasm"
if [ ! -s "$out" ]; then
  tmp=$(mktemp -d)
  trap 'git worktree remove --force "$tmp" >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
  git worktree add --detach -q "$tmp" "$rev"
  mkdir -p build
  (cd "$tmp" && GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o "$OLDPWD/$out" ./filter)
  # As that commit's make build did: with branch hints once it had them.
  if [ -d "$tmp/cmd/wasmhint" ]; then (cd "$tmp" && go run ./cmd/wasmhint "$OLDPWD/$out" >/dev/null); fi
fi
echo "$out"
