#!/usr/bin/env bash
# Builds the init image described by init-image/Dockerfile as an OCI
# image-layout archive, with umoci and no container daemon.
# Usage: init-image/build.sh BINARY OUT.tar
#
# Reproducible: every timestamp is SOURCE_DATE_EPOCH (default: the last
# commit's time), owners are 0/0, modes are fixed and both the layer and the
# archive are written in sorted order, so the same binary gives the same
# digest on any machine. The Dockerfile is the single description of the
# image: its COPY destination and mode, USER and ENTRYPOINT are read from it.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
(($# == 2)) || { echo "usage: $0 BINARY OUT.tar" >&2; exit 2; }
binary=$1 out=$2
[[ -x $binary ]] || { echo "build.sh: $binary is not an executable (run make baowrap)" >&2; exit 1; }

dockerfile=$here/Dockerfile
copy=$(grep -E '^COPY ' "$dockerfile")
target=${copy##* }
mode=$(sed -nE 's/.*--chmod=([0-7]+).*/\1/p' <<<"$copy")
user=$(sed -nE 's/^USER +//p' "$dockerfile")
entrypoint=$(sed -nE 's/^ENTRYPOINT +//p' "$dockerfile")
[[ $target == /* && -n $mode && $user =~ ^[0-9]+:[0-9]+$ && -n $entrypoint ]] ||
    { echo "build.sh: cannot read COPY/USER/ENTRYPOINT from $dockerfile" >&2; exit 1; }

epoch=${SOURCE_DATE_EPOCH:-$(git -C "$here" log -1 --format=%ct 2>/dev/null || echo 0)}
created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)
version=$("$binary" version | sed -n 's/^baowrap //p')
revision=$("$binary" version | sed -n 's/^revision: //p')
tag=$version

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The layer's tree: the binary and its parent directories, nothing else.
install -D -m "$mode" "$binary" "$work/rootfs$target"
find "$work/rootfs" -type d -exec chmod 0755 {} +
# GNU tar writes the layer: umoci 0.4.7's own `insert` ends its tar stream
# without the last file's padding and the end-of-archive blocks
# (opencontainers/umoci#436), which strict readers such as GNU tar reject.
rest=${target#/}
tar --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner --format=ustar \
    -C "$work/rootfs" -cf "$work/layer.tar" "${rest%%/*}"

image="$work/layout:$tag"
umoci init --layout "$work/layout"
umoci new --image "$image"
umoci raw add-layer --image "$image" --history.created "$created" \
    --history.created_by "COPY --chmod=$mode baowrap $target" "$work/layer.tar"
args=(--no-history --created "$created" --config.user "$user"
    --config.label "org.opencontainers.image.title=baowrap-init"
    --config.label "org.opencontainers.image.version=$version"
    --config.label "org.opencontainers.image.revision=$revision")
while IFS= read -r word; do args+=(--config.entrypoint "$word"); done < <(jq -r '.[]' <<<"$entrypoint")
umoci config --image "$image" "${args[@]}"
umoci gc --layout "$work/layout"

tmp="$out.tmp.$$"
tar --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner --mode='u=rwX,go=rX' \
    --format=ustar -C "$work/layout" -cf "$tmp" oci-layout index.json blobs
mv "$tmp" "$out"
manifest=$(jq -r '.manifests[0].digest' "$work/layout/index.json")
echo "$out: $(stat -c %s "$out") bytes, tag $tag, manifest $manifest, archive sha256:$(sha256sum "$out" | cut -d' ' -f1)"
