#!/usr/bin/env bash
# Apply TTG's infrastructure to the current kubectl context: the `ttg` namespace, generated
# credentials (Secrets minio-root and ttg-s3, created once and kept), RBAC for workflows and
# submitters, MinIO with its bucket, Argo's artifact repository and the controller metrics
# Service. Needs Argo Workflows already installed (setup-local.sh / setup-aks.sh do it).
# Safe to rerun: everything is applied declaratively; the bucket Job is re-created.
#
# Usage: infra/scripts/deploy.sh
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

case "${1:-}" in
  -h|--help) sed -n '2,8p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
  "") ;;
  *) die "unknown argument '$1' (see --help)" ;;
esac

require kubectl od tr
require_cluster
kubectl get crd workflows.argoproj.io >/dev/null 2>&1 \
  || die "Argo Workflows is not installed in context '$(kubectl config current-context)': run infra/scripts/setup-local.sh (or setup-aks.sh)"
log "deploying to context '$(kubectl config current-context)'"

# The manifests name the MinIO image build.sh makes; with TTG_MINIO_IMAGE (a registry's
# copy, as setup-aks.sh pushes) they are applied with that image instead.
apply_minio_manifest() {
  if [[ "$MINIO_IMAGE" == "$MINIO_IMAGE_BUILT" ]]; then
    kubectl apply -f "$1"
  else
    sed "s|image: ${MINIO_IMAGE_BUILT}\$|image: ${MINIO_IMAGE}|" "$1" | kubectl apply -f -
  fi
}

kubectl apply -f "${MANIFESTS}/00-namespace.yaml"
ensure_secrets
kubectl apply \
  -f "${MANIFESTS}/10-workflow-rbac.yaml" \
  -f "${MANIFESTS}/11-submitter-rbac.yaml" \
  -f "${MANIFESTS}/30-artifact-repositories.yaml" \
  -f "${MANIFESTS}/40-argo-controller-metrics.yaml"
apply_minio_manifest "${MANIFESTS}/20-minio.yaml"
kubectl -n "$NAMESPACE" rollout status deployment/minio --timeout=300s

# A Job's pod template is immutable: replace it so that a rerun runs it again.
kubectl -n "$NAMESPACE" delete job minio-setup --ignore-not-found --wait=true
apply_minio_manifest "${MANIFESTS}/21-minio-bucket-job.yaml"
if ! kubectl -n "$NAMESPACE" wait --for=condition=complete job/minio-setup --timeout=300s; then
  kubectl -n "$NAMESPACE" logs job/minio-setup --tail=50 >&2 || true
  die "the MinIO bucket Job did not complete (its log is above); see docs/troubleshooting.md"
fi

log "TTG infrastructure is deployed in namespace '${NAMESPACE}'"
