#!/usr/bin/env bash
# Remove TTG sweeps and what they leave behind; optionally the infrastructure or the cluster.
#   (default)  delete TTG Workflows, CronWorkflows and WorkflowTemplates in namespace ttg;
#              their pods go with them. Results in MinIO are kept.
#   --infra    also delete namespace ttg (MinIO and its stored results!) and the metrics
#              Service; the cluster and Argo stay.
#   --all      delete the whole kind cluster.
# Safe to rerun: what is already gone is skipped.
#
# Usage: infra/scripts/cleanup.sh [--infra | --all]   (env: TTG_CLUSTER, default ttg-sandbox)
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

mode=sweeps
case "${1:-}" in
  -h|--help) sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
  --infra) mode=infra ;;
  --all) mode=all ;;
  "") ;;
  *) die "unknown argument '$1' (see --help)" ;;
esac

if [[ "$mode" == all ]]; then
  require kind
  if kind_cluster_exists; then
    log "deleting kind cluster '${CLUSTER_NAME}'"
    kind delete cluster --name "$CLUSTER_NAME"
  else
    log "kind cluster '${CLUSTER_NAME}' does not exist: nothing to delete"
  fi
  exit 0
fi

require kubectl
require_cluster
if ! kubectl get namespace "$NAMESPACE" >/dev/null 2>&1; then
  log "namespace '${NAMESPACE}' does not exist: nothing to clean"
  exit 0
fi
if kubectl get crd workflows.argoproj.io >/dev/null 2>&1; then
  log "deleting TTG sweeps in namespace '${NAMESPACE}'"
  kubectl -n "$NAMESPACE" delete workflows,cronworkflows,workflowtemplates \
    -l app.kubernetes.io/name=ttg --ignore-not-found --wait=true
fi
if [[ "$mode" == infra ]]; then
  log "deleting namespace '${NAMESPACE}' (MinIO and its data) and the metrics Service"
  kubectl delete -f "${MANIFESTS}/40-argo-controller-metrics.yaml" --ignore-not-found
  kubectl delete namespace "$NAMESPACE" --ignore-not-found --wait=true
fi
log "cleanup done"
