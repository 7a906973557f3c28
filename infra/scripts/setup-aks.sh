#!/usr/bin/env bash
# Azure: a resource group, a container registry (ACR), an AKS cluster allowed to pull from
# it, Argo Workflows v4.1.2, the worker image pushed to ACR, and TTG's infrastructure via
# deploy.sh. Safe to rerun: what exists is kept (the AKS-ACR link is re-asserted).
# Costs money while the cluster runs; `az group delete --name <group>` removes it all.
#
# Usage: ACR_NAME=<globally-unique-alphanumeric> infra/scripts/setup-aks.sh
# Env:   AZ_RESOURCE_GROUP (ttg-rg), AZ_LOCATION (westeurope), AKS_NAME (ttg-aks),
#        AKS_NODE_COUNT (3), AKS_NODE_SIZE (Standard_D4s_v5), TTG_IMAGE_TAG (git commit)
# Needs: az (logged in: `az login`), kubectl; docker to build locally, else `az acr build`.
set -euo pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

case "${1:-}" in
  -h|--help) sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
  "") ;;
  *) die "unknown argument '$1' (see --help)" ;;
esac

require az kubectl od tr
[[ -n "${ACR_NAME:-}" ]] \
  || die "set ACR_NAME to a globally unique registry name (5-50 letters and digits), e.g. ACR_NAME=ttg\$(whoami | tr -dc a-z0-9)"
[[ "$ACR_NAME" =~ ^[a-zA-Z0-9]{5,50}$ ]] || die "ACR_NAME must be 5-50 letters and digits, got '${ACR_NAME}'"
az account show >/dev/null 2>&1 || die "the Azure CLI is not logged in: run 'az login'"

group="${AZ_RESOURCE_GROUP:-ttg-rg}"
location="${AZ_LOCATION:-westeurope}"
aks="${AKS_NAME:-ttg-aks}"
nodes="${AKS_NODE_COUNT:-3}"
size="${AKS_NODE_SIZE:-Standard_D4s_v5}"
if [[ -n "${TTG_IMAGE_TAG:-}" ]]; then
  tag="$TTG_IMAGE_TAG"
elif tag="$(git -C "$TTG_ROOT" rev-parse --short HEAD 2>/dev/null)"; then
  :
else
  tag="$(date -u +%Y%m%d%H%M%S)"
fi
registry="$(tr '[:upper:]' '[:lower:]' <<<"$ACR_NAME").azurecr.io"
image="${registry}/ttg-worker:${tag}"
TTG_MINIO_IMAGE="${registry}/${MINIO_IMAGE_BUILT}"  # deploy.sh applies MinIO with it
export TTG_MINIO_IMAGE

if az group show --name "$group" >/dev/null 2>&1; then
  log "resource group ${group} exists: kept"
else
  log "creating resource group ${group} in ${location}"
  az group create --name "$group" --location "$location" --output none
fi

if az acr show --name "$ACR_NAME" --resource-group "$group" >/dev/null 2>&1; then
  log "container registry ${ACR_NAME} exists: kept"
else
  log "creating container registry ${ACR_NAME}"
  az acr create --name "$ACR_NAME" --resource-group "$group" --sku Basic --output none
fi

if az aks show --name "$aks" --resource-group "$group" >/dev/null 2>&1; then
  log "AKS cluster ${aks} exists: kept; making sure it may pull from ${ACR_NAME}"
  az aks update --name "$aks" --resource-group "$group" --attach-acr "$ACR_NAME" --output none
else
  log "creating AKS cluster ${aks} (${nodes} x ${size}); this takes several minutes"
  az aks create --name "$aks" --resource-group "$group" --location "$location" \
    --node-count "$nodes" --node-vm-size "$size" --attach-acr "$ACR_NAME" \
    --enable-managed-identity --generate-ssh-keys \
    --network-plugin azure --network-policy calico --output none
fi
az aks get-credentials --name "$aks" --resource-group "$group" --overwrite-existing

install_argo

if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
  log "building and pushing ${image} with local Docker"
  az acr login --name "$ACR_NAME"
  docker build --file "${TTG_ROOT}/docker/Dockerfile" --tag "$image" "$TTG_ROOT"
  docker push "$image"
  docker build --file "${TTG_ROOT}/docker/minio.Dockerfile" --tag "$TTG_MINIO_IMAGE" "$TTG_ROOT"
  docker push "$TTG_MINIO_IMAGE"
else
  log "no local Docker daemon: building ${image} and ${TTG_MINIO_IMAGE} in ACR (az acr build)"
  az acr build --registry "$ACR_NAME" --image "ttg-worker:${tag}" \
    --file "${TTG_ROOT}/docker/Dockerfile" "$TTG_ROOT"
  az acr build --registry "$ACR_NAME" --image "${MINIO_IMAGE_BUILT}" \
    --file "${TTG_ROOT}/docker/minio.Dockerfile" "$TTG_ROOT"
fi

"${TTG_ROOT}/infra/scripts/deploy.sh"

cat >&2 <<MSG

AKS cluster '${aks}' is ready and ${image} is in ACR. Run a sweep with that image:
  .venv/bin/python workflows/sweep.py render --image ${image} | kubectl -n ${NAMESPACE} create -f -
See docs/cluster.md (Azure) for the Argo Server, results and cleanup.
MSG
