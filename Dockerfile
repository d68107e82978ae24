# clusterd container image: a multi-stage build on the official Swift image.
#
#   docker build -t clusterd:dev .
#   docker run --rm -p 4222:4222 -p 8222:8222 -v clusterd-data:/data clusterd:dev
#
# The runtime stage is the matching Swift "slim" image (the Swift runtime libraries, no
# compiler) plus liblz4 (StreamLog's block compression) and curl (for HEALTHCHECK).
ARG SWIFT_VERSION=6.3

FROM swift:${SWIFT_VERSION}-noble AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends liblz4-dev pkg-config \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Dependencies first, so a source change does not fetch them again (Package.resolved is
# copied when present).
COPY Package.* ./
RUN swift package resolve
COPY Sources ./Sources
COPY Tests ./Tests
RUN swift build -c release --product clusterd \
 && install -D -m 0755 "$(swift build -c release --show-bin-path)/clusterd" /out/clusterd

FROM swift:${SWIFT_VERSION}-noble-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends liblz4-1 curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /data --no-create-home clusterd \
 && mkdir -p /data /etc/clusterd \
 && chown 10001:10001 /data
COPY --from=build /out/clusterd /usr/local/bin/clusterd
COPY deploy/docker/clusterd.conf /etc/clusterd/clusterd.conf
# Numeric user, so Kubernetes can check runAsNonRoot.
USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
# clients, routes, monitoring (/healthz, /varz, /routez, /jsz, /metrics)
EXPOSE 4222 6222 8222
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8222/healthz"]
# SIGTERM is the graceful stop (stop accepting, hand over, flush, exit 0).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/clusterd"]
CMD ["--config", "/etc/clusterd/clusterd.conf"]
