#!/usr/bin/env bash
# Docker for `make sam-local`: a daemon that answers (started here only if none does and we are root), and the
# Lambda base image. Prints the image to give `sam local --invoke-image`, or nothing when AWS's image is there: on a
# machine that can pull public.ecr.aws/lambda/provided:al2023, SAM CLI uses it as on any user's machine; otherwise
# the stand-in (standin-image.sh) is built from the bootstraps given as arguments.
#
# Usage: docker.sh BOOTSTRAP...
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
AWS_IMAGE=public.ecr.aws/lambda/provided:al2023
STANDIN=chat-sync/lambda-provided-al2023-standin:latest

if ! docker info >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v dockerd >/dev/null; then
    echo "docker: no daemon answers; starting dockerd (log: /var/log/chat-sync-dockerd.log)" >&2
    nohup dockerd >/var/log/chat-sync-dockerd.log 2>&1 &
    for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 0.5; done
  fi
  docker info >/dev/null 2>&1 || {
    echo "docker: no daemon answers. Install Docker (Debian: apt-get install docker.io) and start it, or run as root." >&2
    exit 1
  }
fi

if docker image inspect "$AWS_IMAGE" >/dev/null 2>&1 || docker pull -q "$AWS_IMAGE" >/dev/null 2>&1; then
  exit 0
fi
echo "docker: $AWS_IMAGE cannot be pulled here; using the stand-in $STANDIN" >&2
STANDIN_IMAGE="$STANDIN" "$here/standin-image.sh" "$@" >&2 || {
  echo "docker: building the stand-in $STANDIN failed (see above)" >&2
  exit 1
}
echo "$STANDIN"
