# syntax=docker/dockerfile:1
# The cluster's MinIO, built from source: MinIO's community edition publishes no images any
# more, and the last archived ones get no security fixes. The server is the version every
# S3 test runs against (Makefile MINIO_VERSION); `mc`, which the bucket Job runs, is the
# newest version the Go module proxy serves. Both go through the Go module proxy only.
#
# Build from the repository root (infra/scripts/build.sh does this):
#   docker build -f docker/minio.Dockerfile -t ttg-minio:<version> .
#
# infra/k8s/20-minio.yaml runs it as uid/gid 10002 with a read-only root filesystem, data
# on /data and HOME on an emptyDir at /tmp.
ARG MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
ARG MC_VERSION=v0.0.0-20250313080218-cf909e1063a9

# ---- stage 1: both binaries, static, from their Go modules ---------------------------------
FROM golang:1.26.8-bookworm AS build
ARG MINIO_VERSION
ARG MC_VERSION
ENV CGO_ENABLED=0 \
    GOBIN=/out \
    GOFLAGS=-trimpath
RUN go install "github.com/minio/minio@${MINIO_VERSION}" \
 && go install "github.com/minio/mc@${MC_VERSION}"

# ---- stage 2: the runtime image ------------------------------------------------------------
FROM debian:12.12-slim
ARG MINIO_VERSION
LABEL org.opencontainers.image.title="ttg-minio" \
      org.opencontainers.image.description="MinIO server and mc, built from source for TTG" \
      org.opencontainers.image.version="${MINIO_VERSION}" \
      org.opencontainers.image.licenses="AGPL-3.0-only"
# uid/gid 10002: infra/k8s/20-minio.yaml's securityContext.
RUN groupadd --system --gid 10002 minio \
 && useradd --system --uid 10002 --gid minio --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin minio
COPY --from=build /out/minio /out/mc /usr/local/bin/
ENV HOME=/tmp \
    MINIO_UPDATE=off \
    MINIO_CALLHOME_ENABLE=off
USER 10002:10002
EXPOSE 9000 9001
ENTRYPOINT ["minio"]
CMD ["server", "/data"]
