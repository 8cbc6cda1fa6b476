#!/usr/bin/env bash
# Make the local base images that every bereit image builds FROM; nothing is pulled.
#
#   e2e/cluster/base-image.sh [--force]
#
#   bereit/debian:bookworm        debootstrap --variant=minbase bookworm, docker import
#   bereit/python-base:bookworm   the same plus python3, pip and venv; a virtualenv at
#                                 /opt/venv is first on PATH, so `pip install` just works
#
# An image that exists already is kept (use --force to remake both). Prints the two tags.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

force=0
case ${1:-} in
  --force) force=1 ;;
  "") ;;
  -h | --help) sed -n '2,10p' "$0"; exit 0 ;;
  *) die "unknown argument '$1' (see --help)" ;;
esac

MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
ensure_dockerd
command -v debootstrap >/dev/null || die "debootstrap is not installed (run e2e/cluster/install-deps.sh)"

have() { ((force == 0)) && docker image inspect "$1" >/dev/null 2>&1; }

if have "$DEBIAN_IMAGE" && have "$PYTHON_BASE_IMAGE"; then
  log "base images cached"
  echo "$DEBIAN_IMAGE"
  echo "$PYTHON_BASE_IMAGE"
  exit 0
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/bereit-rootfs.XXXXXX")
rootfs=$work/rootfs
cleanup() {
  for m in dev/pts dev proc; do
    mountpoint -q "$rootfs/$m" 2>/dev/null && umount "$rootfs/$m"
  done
  rm -rf "$work"
}
trap cleanup EXIT

# import ROOTFS TAG CHANGES...: the folder as a one-layer image.
import() {
  local dir=$1 tag=$2
  shift 2
  local changes=()
  for c in "$@"; do changes+=(--change "$c"); done
  tar --numeric-owner -C "$dir" -c . | docker import "${changes[@]}" - "$tag" >/dev/null
  log "imported $tag"
}

log "debootstrap --variant=minbase $DEBIAN_SUITE (log: $work/debootstrap.log)"
debootstrap --variant=minbase "$DEBIAN_SUITE" "$rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 ||
  { tail -20 "$work/debootstrap.log" >&2; die "debootstrap failed"; }
# Slimmer images: no apt lists or downloaded packages.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/archives/*.deb
base_changes=('ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' 'CMD ["/bin/bash"]')
if ((force)) || ! docker image inspect "$DEBIAN_IMAGE" >/dev/null 2>&1; then
  import "$rootfs" "$DEBIAN_IMAGE" "${base_changes[@]}"
fi

log "installing python3, pip and venv into the rootfs"
mount -t proc proc "$rootfs/proc"
mount --bind /dev "$rootfs/dev"
cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
chroot "$rootfs" /usr/bin/env DEBIAN_FRONTEND=noninteractive PATH=/usr/sbin:/usr/bin:/sbin:/bin \
  sh -ec 'apt-get update -q
          apt-get install -y -q --no-install-recommends python3 python3-pip python3-venv ca-certificates
          python3 -m venv /opt/venv
          apt-get clean
          rm -rf /var/lib/apt/lists/*' >"$work/python.log" 2>&1 ||
  { tail -20 "$work/python.log" >&2; die "installing python3 failed"; }
: >"$rootfs/etc/resolv.conf"
umount "$rootfs/dev" "$rootfs/proc"
import "$rootfs" "$PYTHON_BASE_IMAGE" \
  'ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  'ENV VIRTUAL_ENV=/opt/venv' 'ENV PYTHONUNBUFFERED=1' 'ENV PIP_DISABLE_PIP_VERSION_CHECK=1' \
  'CMD ["python3"]'

echo "$DEBIAN_IMAGE"
echo "$PYTHON_BASE_IMAGE"
