#!/bin/sh
# vendor.sh copies the asciinema web player's standalone bundle from
# node_modules into static/vendor, where the Go build embeds it. The Go build
# never runs npm; run this only when upgrading the player:
#
#	cd web && npm install --save-exact asciinema-player@<version>   # to upgrade
#	cd web && npm ci && ./vendor.sh                                 # to reproduce
#
# then commit package.json, package-lock.json and static/vendor.
set -eu
cd "$(dirname "$0")"

src=node_modules/asciinema-player
dst=static/vendor
if [ ! -d "$src/dist/bundle" ]; then
	echo "vendor.sh: $src/dist/bundle missing; run 'npm ci' first" >&2
	exit 1
fi

mkdir -p "$dst"
cp "$src/dist/bundle/asciinema-player.min.js" "$dst/asciinema-player.min.js"
cp "$src/dist/bundle/asciinema-player.css" "$dst/asciinema-player.css"
cp "$src/LICENSE" "$dst/asciinema-player.LICENSE"
version=$(node -p "require('./$src/package.json').version")
echo "$version" >"$dst/asciinema-player.VERSION"
echo "vendored asciinema-player $version into $dst"
