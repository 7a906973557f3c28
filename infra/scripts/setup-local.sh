#!/usr/bin/env bash
# Local cluster in a box: a kind cluster (one control plane, three workers), Argo Workflows
# v4.1.2, and TTG's infrastructure (namespace, MinIO, credentials, RBAC) via deploy.sh.
# Safe to rerun: an existing cluster, Argo install and credentials are kept.
#
# Usage: infra/scripts/setup-local.sh        (env: TTG_CLUSTER, default ttg-sandbox)
# Then:  infra/scripts/build.sh              (worker image into the cluster)
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

case "${1:-}" in
  -h|--help) sed -n '2,7p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
  "") ;;
  *) die "unknown argument '$1' (see --help)" ;;
esac

require docker kind kubectl od tr
require_docker_daemon

if kind_cluster_exists; then
  log "kind cluster '${CLUSTER_NAME}' exists: kept"
else
  log "creating kind cluster '${CLUSTER_NAME}' (1 control plane + 3 workers)"
  kind create cluster --name "$CLUSTER_NAME" --config "${TTG_ROOT}/infra/kind/cluster.yaml" --wait 180s
fi
kubectl config use-context "kind-${CLUSTER_NAME}" >/dev/null
kubectl get nodes -o wide

install_argo
"${TTG_ROOT}/infra/scripts/deploy.sh"

cat >&2 <<MSG

Cluster '${CLUSTER_NAME}' is ready. Next:
  infra/scripts/build.sh        # build ${IMAGE} and load it into the cluster
  .venv/bin/python workflows/sweep.py render | kubectl -n ${NAMESPACE} create -f -
  kubectl -n ${NAMESPACE} get pods -l workflows.argoproj.io/workflow -o wide -w
See docs/cluster.md for submitting through the Argo Server, results and metrics.
MSG
