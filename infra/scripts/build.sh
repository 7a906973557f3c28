#!/usr/bin/env bash
# Build the worker image (docker/Dockerfile: steps/ + numpy, pyarrow, minio) and the MinIO
# image (docker/minio.Dockerfile: server and mc from their pinned Go sources) and load both
# into the kind cluster, where `imagePullPolicy: IfNotPresent` finds them.
# Safe to rerun: a rebuilt image replaces the loaded one under the same tag.
#
# Usage: infra/scripts/build.sh [--no-load]   (env: TTG_IMAGE, default ttg-worker:latest;
#                                              TTG_CLUSTER, default ttg-sandbox)
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

load=1
case "${1:-}" in
  -h|--help) sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
  --no-load) load=0 ;;
  "") ;;
  *) die "unknown argument '$1' (see --help)" ;;
esac

require docker
require_docker_daemon

log "building ${IMAGE} from docker/Dockerfile"
docker build --file "${TTG_ROOT}/docker/Dockerfile" --tag "$IMAGE" "$TTG_ROOT"
log "building ${MINIO_IMAGE_BUILT} from docker/minio.Dockerfile (MinIO from source: minutes the first time)"
docker build --file "${TTG_ROOT}/docker/minio.Dockerfile" --tag "$MINIO_IMAGE_BUILT" "$TTG_ROOT"

if [[ "$load" -eq 0 ]]; then
  log "built ${IMAGE} and ${MINIO_IMAGE_BUILT} (not loaded into kind: --no-load)"
  exit 0
fi
require kind
kind_cluster_exists \
  || die "kind cluster '${CLUSTER_NAME}' does not exist: run infra/scripts/setup-local.sh first (or pass --no-load)"
log "loading ${IMAGE} and ${MINIO_IMAGE_BUILT} into kind cluster '${CLUSTER_NAME}'"
kind load docker-image "$IMAGE" --name "$CLUSTER_NAME"
kind load docker-image "$MINIO_IMAGE_BUILT" --name "$CLUSTER_NAME"
log "done: the rendered Workflow's pods will run ${IMAGE}"
