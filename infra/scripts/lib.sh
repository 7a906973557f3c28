# shellcheck shell=bash
# Shared by the scripts in infra/scripts: names, pinned versions and small helpers.
# Sourced by each script (never run on its own); every value can be overridden from the
# environment where it says so.

TTG_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export TTG_ROOT
CLUSTER_NAME="${TTG_CLUSTER:-ttg-sandbox}"          # kind cluster (the old project's name)
NAMESPACE="ttg"                                     # fixed: infra/k8s manifests name it
# shellcheck disable=SC2034  # used by the scripts that source this file
IMAGE="${TTG_IMAGE:-ttg-worker:latest}"             # what the rendered Workflow runs
# MinIO built from source (docker/minio.Dockerfile); infra/k8s names this tag, the
# source version's commit. TTG_MINIO_IMAGE: the same image in a registry (setup-aks.sh).
MINIO_IMAGE_BUILT="ttg-minio:7aac2a2c5b7c"
# shellcheck disable=SC2034  # used by the scripts that source this file
MINIO_IMAGE="${TTG_MINIO_IMAGE:-$MINIO_IMAGE_BUILT}"
ARGO_VERSION="v4.1.2"
ARGO_INSTALL_URL="https://github.com/argoproj/argo-workflows/releases/download/${ARGO_VERSION}/install.yaml"
# shellcheck disable=SC2034  # used by the scripts that source this file
MANIFESTS="${TTG_ROOT}/infra/k8s"

log() { printf '==> %s\n' "$*" >&2; }
warn() { printf 'warning: %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# How to get each prerequisite, for the message when it is missing.
install_hint() {
  case "$1" in
    docker) echo "install Docker Engine or Docker Desktop: https://docs.docker.com/get-docker/" ;;
    kind) echo "install kind >= 0.29: https://kind.sigs.k8s.io/docs/user/quick-start/#installation" ;;
    kubectl) echo "install kubectl >= 1.33: https://kubernetes.io/docs/tasks/tools/" ;;
    az) echo "install the Azure CLI: https://learn.microsoft.com/cli/azure/install-azure-cli" ;;
    base64|od|tr) echo "part of coreutils: install your system's coreutils package" ;;
    *) echo "install '$1' and make sure it is on PATH" ;;
  esac
}

# require CMD...: exit with one line per missing command, saying how to get it.
require() {
  local cmd missing=0
  for cmd in "$@"; do
    if ! command -v "$cmd" >/dev/null 2>&1; then
      printf 'error: missing prerequisite: %s (%s)\n' "$cmd" "$(install_hint "$cmd")" >&2
      missing=1
    fi
  done
  if [[ "$missing" -ne 0 ]]; then
    exit 1
  fi
}

require_docker_daemon() {
  docker info >/dev/null 2>&1 \
    || die "docker is installed but its daemon does not answer: start Docker and retry"
}

require_cluster() {
  kubectl version --request-timeout=10s >/dev/null 2>&1 \
    || die "kubectl cannot reach a cluster (context: '$(kubectl config current-context 2>/dev/null || echo none)'): run infra/scripts/setup-local.sh or setup-aks.sh first"
}

kind_cluster_exists() {
  local clusters
  clusters="$(kind get clusters 2>/dev/null)"
  grep -qx -- "$CLUSTER_NAME" <<<"$clusters"
}

# random_hex BYTES: a hex string from the kernel's CSPRNG (no pipeline that can SIGPIPE).
random_hex() {
  od -An -vtx1 -N"$1" /dev/urandom | tr -d ' \n'
}

# Argo Workflows, by server-side apply of the pinned release manifest (never copied here).
install_argo() {
  log "Argo Workflows ${ARGO_VERSION} (server-side apply of ${ARGO_INSTALL_URL})"
  if ! kubectl get namespace argo >/dev/null 2>&1; then
    kubectl create namespace argo
  fi
  kubectl apply --server-side --force-conflicts -n argo -f "$ARGO_INSTALL_URL"
  kubectl -n argo rollout status deployment/workflow-controller --timeout=300s
  kubectl -n argo rollout status deployment/argo-server --timeout=300s
}

# The two credential Secrets, generated on first use and then kept (MinIO's data on its
# volume is tied to them). Values travel on stdin, never on a command line.
ensure_secrets() {
  if kubectl -n "$NAMESPACE" get secret minio-root >/dev/null 2>&1; then
    log "Secret minio-root exists: kept"
  else
    log "Secret minio-root: generating MinIO root credentials"
    kubectl apply -f - <<YAML
apiVersion: v1
kind: Secret
metadata:
  name: minio-root
  namespace: ${NAMESPACE}
  labels:
    app.kubernetes.io/part-of: ttg
type: Opaque
stringData:
  MINIO_ROOT_USER: "ttg-root-$(random_hex 4)"
  MINIO_ROOT_PASSWORD: "$(random_hex 24)"
YAML
  fi
  if kubectl -n "$NAMESPACE" get secret ttg-s3 >/dev/null 2>&1; then
    log "Secret ttg-s3 exists: kept"
  else
    log "Secret ttg-s3: generating the workflows' MinIO user"
    kubectl apply -f - <<YAML
apiVersion: v1
kind: Secret
metadata:
  name: ttg-s3
  namespace: ${NAMESPACE}
  labels:
    app.kubernetes.io/part-of: ttg
type: Opaque
stringData:
  AWS_ENDPOINT_URL: "http://minio.${NAMESPACE}.svc.cluster.local:9000"
  AWS_ACCESS_KEY_ID: "ttg-$(random_hex 8)"
  AWS_SECRET_ACCESS_KEY: "$(random_hex 24)"
  AWS_REGION: "us-east-1"
YAML
  fi
}
