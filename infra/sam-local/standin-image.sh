#!/usr/bin/env bash
# Builds chat-sync/lambda-provided-al2023-standin: a stand-in for AWS's Lambda base image
# (public.ecr.aws/lambda/provided:al2023), for machines that cannot pull it. `make sam-local` builds and uses it only
# when `docker pull` of AWS's image fails; on a machine that can pull, SAM CLI uses AWS's image and this never runs.
#
# What SAM CLI needs of a base image given with --invoke-image: a /bin/sh with mv and chmod (its Dockerfile adds the
# Lambda Runtime Interface Emulator and RUNs `mv ... && chmod +x ...`); what the functions need: the shared libraries
# their bootstrap links (glibc), at the paths ldd reports, and the CA certificates. busybox (Debian's busybox-static) provides the shell and
# the tools; `docker import` turns the directory into an image, with no registry involved.
#
# Usage: standin-image.sh BOOTSTRAP...   (the cargo-lambda builds whose libraries the image must hold)
set -euo pipefail

IMAGE="${STANDIN_IMAGE:-chat-sync/lambda-provided-al2023-standin:latest}"
BUSYBOX="${BUSYBOX:-/bin/busybox}"

[ "$#" -gt 0 ] || { echo "usage: $0 BOOTSTRAP..." >&2; exit 2; }
if ! "$BUSYBOX" --list >/dev/null 2>&1 || ! file -L "$BUSYBOX" | grep -q 'statically linked'; then
  echo "a statically linked busybox is required at $BUSYBOX (apt-get install busybox-static)" >&2
  exit 1
fi

root="$(mktemp -d)"
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,tmp,var/task,var/runtime,var/rapid,opt,etc}
chmod 1777 "$root/tmp"
cp "$BUSYBOX" "$root/bin/busybox"
for tool in sh mv chmod cp rm mkdir ls cat env; do ln -s busybox "$root/bin/$tool"; done

# Every library any bootstrap links, and the dynamic loader, copied with their paths (symlinks resolved).
for bootstrap in "$@"; do
  [ -x "$bootstrap" ] || { echo "no executable at $bootstrap (run make build-lambdas)" >&2; exit 1; }
  ldd "$bootstrap" | grep -o '/[^ ]*' | while read -r library; do
    mkdir -p "$root$(dirname "$library")"
    cp -L "$library" "$root$library"
  done
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
# The CA certificates (the HTTP clients load the system's at start, as on AWS's image), from Debian's
# ca-certificates.
CA_BUNDLE="${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"
[ -s "$CA_BUNDLE" ] || { echo "no CA bundle at $CA_BUNDLE (apt-get install ca-certificates)" >&2; exit 1; }
mkdir -p "$root/etc/ssl/certs"
cp -L "$CA_BUNDLE" "$root/etc/ssl/certs/ca-certificates.crt"

tar -C "$root" -c . | docker import \
  --change 'ENV PATH=/bin:/usr/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'WORKDIR /var/task' \
  - "$IMAGE" >/dev/null
echo "built $IMAGE ($(du -sh "$root" | cut -f1))"
# SAM CLI keeps the image it built on the previous stand-in (REPO:rapid-ARCH) and, not pulling, would not rebuild it.
# On a fresh Docker there is none: grep finding nothing is no failure (pipefail would make it one).
docker images --format '{{.Repository}}:{{.Tag}}' "${IMAGE%:*}" | { grep ':rapid-' || true; } | xargs -r docker rmi -f >/dev/null
