#!/usr/bin/env bash
# Builds the package in OUT (default: here): node_modules from the vendored npm tarballs (checked
# against vendor/SHA256SUMS, so a build downloads nothing), dist/ from the TypeScript sources
# (Debian's tsc), and dist/hawser.browser.js, one ES module with its dependencies for pages
# (Debian's esbuild).
#   ./build.sh [OUT]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=$(realpath -m "${1:-$here}")
mkdir -p "$out"
(cd "$here/vendor" && sha256sum --quiet --strict -c SHA256SUMS)
if [ "$out" != "$here" ]; then
  rm -rf "$out/src"
  cp -r "$here/src" "$here/package.json" "$here/tsconfig.json" "$out/"
fi
# Every dependency at the version package.json names, unpacked from its registry tarball.
while read -r package version; do
  tarball="$here/vendor/$(echo "${package#@}" | tr / -)-$version.tgz"
  rm -rf "$out/node_modules/$package"
  mkdir -p "$out/node_modules/$package"
  tar -xzf "$tarball" -C "$out/node_modules/$package" --strip-components=1
done < <(node -e '
  const deps = require(process.argv[1]).dependencies;
  for (const [name, version] of Object.entries(deps)) console.log(name, version);
' "$here/package.json")
rm -rf "$out/dist"
tsc -p "$out/tsconfig.json"
esbuild "$out/src/index.ts" --bundle --format=esm --platform=browser --target=es2020 \
  --external:node:net --log-level=warning --outfile="$out/dist/hawser.browser.js"
