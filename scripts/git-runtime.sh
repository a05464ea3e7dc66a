#!/bin/sh
# Copies what the commits job needs of an installed git into OUT (default /git-runtime), laid
# out from /, for a runtime image without a package manager (distroless): the git binary (all
# the builtins the job runs: init, fetch, fetch-pack, index-pack, rev-list, log, cat-file,
# merge-base, update-ref, rev-parse, ls-remote), git-remote-http(s) for smart HTTP, and the
# shared libraries both load, less glibc and libgcc, which the runtime image has. No perl, no
# templates (git init works without them). Used by the Dockerfile; runnable anywhere to check.
#   sh scripts/git-runtime.sh [OUT]
set -eu
OUT="${1:-/git-runtime}"
core="$(git --exec-path)"
mkdir -p "$OUT/usr/bin" "$OUT$core"
cp -L "$(command -v git)" "$OUT/usr/bin/git"
cp -L "$core/git-remote-http" "$OUT$core/git-remote-http"
ln -sf git-remote-http "$OUT$core/git-remote-https"
ldd "$(command -v git)" "$core/git-remote-http" \
  | awk '/=> \// { print $3 }' | sort -u \
  | grep -v -E '/(libc|libm|libpthread|libdl|librt|libresolv|libgcc_s)\.so|/ld-linux' \
  | while read -r lib; do cp -L --parents "$lib" "$OUT/"; done
echo "git-runtime: $(du -sh "$OUT" | cut -f1) in $OUT"
