#!/usr/bin/env bash
# Build the node agent's OCI image without any registry (`make node-image`):
#   1. a minimal Debian bookworm root filesystem from Debian packages (mmdebstrap), cached under
#      var/node-image/ by a key of its package list, `podman import`ed as the local base image;
#   2. the agent's wheel (node/pyproject.toml) and the PyPI wheels Debian lacks at a usable version
#      (pydantic 2), installed into a venv over Debian's python3-* packages (podman build);
#   3. an SBOM of what the image holds (dpkg + Python distributions, CycloneDX JSON) added to the
#      image with a label pointing to it, and written beside the build output.
# Output under var/node-image/: optima_node-<version>-py3-none-any.whl, optima-node-<version>.tar
# (+ .sha256; the image as sites load it), sbom.json, image.env; prints the size and build time.
# Needs root, podman, runc and mmdebstrap; installs them with apt-get when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
log() { printf '=== [%4ss] %s\n' "$(($(date +%s) - started))" "$*"; }

IMAGE=${NODE_IMAGE:-localhost/optima-node}
OUT=${NODE_IMAGE_OUT:-var/node-image}
PYTHON=${PYTHON:-.venv/bin/python}
SUITE=bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
# Debian's python3-* packages where bookworm's version suffices (numpy 1.24, cryptography 38,
# psycopg 3.1); pydantic 2 comes from PyPI. python3-venv gives the venv its pip (removed after).
PACKAGES=(python3 python3-venv python3-numpy python3-cryptography python3-psycopg libpq5
  ca-certificates tzdata)
MAX_SIZE_MB=${NODE_IMAGE_MAX_MB:-250}

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

need=()
command -v podman >/dev/null 2>&1 || need+=(podman)
command -v runc >/dev/null 2>&1 || need+=(runc)
command -v mmdebstrap >/dev/null 2>&1 || need+=(mmdebstrap)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# Podman in these machines' containers: no default ulimits (they cannot be raised here).
if [ ! -s "${CONTAINERS_CONF:-}" ]; then
  export CONTAINERS_CONF="$OUT/containers.conf"
  printf '[containers]\ndefault_ulimits = []\n' >"$CONTAINERS_CONF"
fi
podman_() { podman --runtime runc "$@"; }

log "agent wheel"
version=$("$PYTHON" -c 'import optima_node; print(optima_node.__version__)')
rm -rf "$OUT/context" && mkdir -p "$OUT/context/wheels"
"$PYTHON" -m pip wheel --quiet --no-deps --wheel-dir "$OUT/context/wheels" node/
"$PYTHON" -m pip download --quiet --only-binary=:all: --python-version 3.11 --implementation cp \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --dest "$OUT/context/wheels" \
  'pydantic>=2.7,<3'
cp "$OUT"/context/wheels/optima_node-*.whl "$OUT/"

# mmdebstrap's options: the cache key of the base tarball covers them and the package list.
DEBSTRAP_OPTS=(--variant=essential --mode=root --format=tar
  --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright'
  --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/info/*'
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/lintian/*'
  --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/* "$1"/var/log/*')
key=$(printf '%s\n' "$SUITE" "$MIRROR" "${PACKAGES[@]}" "${DEBSTRAP_OPTS[@]}" | sha256sum | cut -c1-16)
base_tar="$OUT/base-$SUITE-$key.tar"
base_image="localhost/optima-node-base:$key"
if [ ! -s "$base_tar" ]; then
  log "base root filesystem: mmdebstrap $SUITE (${PACKAGES[*]})"
  rm -f "$OUT"/base-"$SUITE"-*.tar
  if ! mmdebstrap --quiet "${DEBSTRAP_OPTS[@]}" --include="$(IFS=,; echo "${PACKAGES[*]}")" \
    "$SUITE" "$base_tar.part" "$MIRROR" >"$OUT/mmdebstrap.log" 2>&1; then
    tail -n 30 "$OUT/mmdebstrap.log" >&2
    exit 1
  fi
  mv "$base_tar.part" "$base_tar"
else
  log "base root filesystem: cached $base_tar"
fi
if ! podman_ image exists "$base_image"; then
  log "podman import"
  podman_ import --quiet "$base_tar" "$base_image" >/dev/null
fi

log "podman build"
cp node/Containerfile "$OUT/context/"
podman_ build --quiet --format docker --network none --layers \
  --build-arg BASE="$base_image" --build-arg VERSION="$version" --build-arg SBOM_SHA256= \
  --target agent -t "$IMAGE-agent:$version" -f "$OUT/context/Containerfile" "$OUT/context" >/dev/null

log "SBOM"
podman_ run --rm --network none --read-only --entrypoint /opt/optima-node/bin/python \
  "$IMAGE-agent:$version" \
  -m optima_node.sbom >"$OUT/context/sbom.json"
sbom_sha=$(sha256sum "$OUT/context/sbom.json" | cut -c1-64)
cp "$OUT/context/sbom.json" "$OUT/sbom.json"
podman_ build --quiet --format docker --network none --layers \
  --build-arg BASE="$base_image" --build-arg VERSION="$version" \
  --build-arg SBOM_SHA256="$sbom_sha" \
  -t "$IMAGE:$version" -t "$IMAGE:latest" -f "$OUT/context/Containerfile" "$OUT/context" >/dev/null
podman_ rmi --force "$IMAGE-agent:$version" >/dev/null 2>&1 || true

log "archive for the sites (no registry): optima-node-$version.tar"
rm -f "$OUT/optima-node-$version.tar"
podman_ save --quiet --format docker-archive -o "$OUT/optima-node-$version.tar" "$IMAGE:$version"
(cd "$OUT" && sha256sum "optima-node-$version.tar" >"optima-node-$version.tar.sha256")

image_id=$(podman_ image inspect --format '{{.Id}}' "$IMAGE:$version")
size=$(podman_ image inspect --format '{{.Size}}' "$IMAGE:$version")
size_mb=$((size / 1000000))
cat >"$OUT/image.env" <<EOF
NODE_IMAGE=$IMAGE:$version
NODE_IMAGE_ID=sha256:$image_id
NODE_IMAGE_SBOM_SHA256=$sbom_sha
NODE_IMAGE_ARCHIVE=$OUT/optima-node-$version.tar
NODE_IMAGE_SIZE_MB=$size_mb
EOF
log "image $IMAGE:$version id sha256:${image_id:0:12} sbom sha256:${sbom_sha:0:12}"
echo "image size: ${size_mb} MB (target <= ${MAX_SIZE_MB} MB)"
echo "build time: $(($(date +%s) - started)) s"
if [ "$size_mb" -gt "$MAX_SIZE_MB" ]; then
  echo "image larger than ${MAX_SIZE_MB} MB" >&2
  exit 1
fi
