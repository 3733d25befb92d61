# mxpolicy container image: mxpolicyd (the service), mxpolicy (CLI) and
# mxpolicy-postfix (the Postfix socketmap adapter), on Debian 12.
#
#   docker build -t mxpolicy .
#   docker run --rm -p 8460:8460 -p 9464:9464 mxpolicy [--flag=value ...]
#
# Everything comes from Debian 12 packages. The runtime stage carries only
# the shared libraries the binaries load (tests/docker/dockerfile_test.sh
# checks the list against ldd of the built binaries), the DNSSEC root trust
# anchor and the CA store. The Helm chart (helm/mxpolicy) runs this image.
# Base images are referenced by tag; docs/container.md shows how to pin them
# by digest for reproducible builds.

# --- build ----------------------------------------------------------------
FROM debian:12 AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      cmake g++ make pkg-config \
      libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler \
      libabsl-dev libunbound-dev libcurl4-openssl-dev libssl-dev libidn2-dev \
      libhiredis-dev libcivetweb-dev \
      libgtest-dev libgmock-dev \
 && rm -rf /var/lib/apt/lists/*
# The CMake project always configures its tests (GTest must be found), but
# only the three programs are built.
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo \
 && cmake --build /build -j"$(nproc)" --target mxpolicyd mxpolicy mxpolicy-postfix \
 && mkdir /out \
 && cp /build/server/src/app/mxpolicyd /build/client/mxpolicy /build/client/mxpolicy-postfix /out/ \
 && strip --strip-debug /out/*

# --- runtime --------------------------------------------------------------
FROM debian:12-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libgrpc++1.51 libgrpc29 libprotobuf32 libabsl20220623 \
      libunbound8 libcurl4 libssl3 libidn2-0 \
      libhiredis0.14 libcivetweb1 \
      dns-root-data ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 65532 mxpolicy \
 && useradd --system --uid 65532 --gid 65532 --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin mxpolicy
COPY --from=build /out/mxpolicyd /out/mxpolicy /out/mxpolicy-postfix /usr/local/bin/
# The server keeps its copies of the TLS files under TMPDIR (in Kubernetes
# an emptyDir at /tmp, the only writable path).
ENV TMPDIR=/tmp
USER 65532:65532
# gRPC API, Prometheus metrics.
EXPOSE 8460 9464
# IPv4 listeners; arguments given to `docker run` come later and win, e.g.
# `--listen=[::]:8460 --metrics-listen=[::]:9464` for IPv6.
ENTRYPOINT ["/usr/local/bin/mxpolicyd", "--listen=0.0.0.0:8460", "--metrics-listen=0.0.0.0:9464"]
