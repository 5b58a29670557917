#!/usr/bin/env bash
# Twilio's OpenAPI files for tests/tests/openapi.rs, from the npm registry
# (the package @twilio-alpha/mcp ships them), pinned by version and sha256.
# Unpacks into tests/.cache/twilio-oai; does nothing when they are there.
#   bash tests/fetch-twilio-oai.sh
set -euo pipefail
cd "$(dirname "$0")/.."

package=@twilio-alpha/mcp
version=0.7.0
sha256=7ff791d1023cad6372496d8aba1c49bc3ffbcf0989b9f96b3a83d2df9d6af755
files=(twilio_api_v2010.json twilio_verify_v2.json twilio_lookups_v2.json)
dest=tests/.cache/twilio-oai

if [ -f "$dest/.version" ] && [ "$(cat "$dest/.version")" = "$version $sha256" ]; then
  exit 0
fi
command -v npm >/dev/null || { echo "npm is needed to fetch Twilio's OpenAPI files: apt-get install npm" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "== fetching Twilio's OpenAPI files ($package@$version from the npm registry)"
(cd "$work" && npm pack --silent "$package@$version" >/dev/null)
tarball=$(ls "$work"/*.tgz)
got=$(sha256sum "$tarball" | cut -d' ' -f1)
if [ "$got" != "$sha256" ]; then
  echo "$package@$version has sha256 $got, expected $sha256: refusing it" >&2
  exit 1
fi
tar -xzf "$tarball" -C "$work"
rm -rf "$dest"
mkdir -p "$dest"
for f in "${files[@]}"; do
  cp "$work/package/twilio-oai/spec/json/$f" "$dest/$f"
done
echo "$version $sha256" > "$dest/.version"
