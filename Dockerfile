# tapwire in a container, next to the containers it watches:
#
#   docker build -t tapwire .
#   docker run --rm -it --pid=host --cgroupns=host --privileged \
#     -v /sys/kernel:/sys/kernel -v /var/run/docker.sock:/var/run/docker.sock tapwire
#
# --pid=host: tapwire sees every process of the host (and their pids are the host's);
# --cgroupns=host: /proc/PID/cgroup paths and cgroup ids are the host's, which is how a
# process is known to belong to a container; --privileged and /sys/kernel: BPF, tracefs and
# the kernel's BTF; the Docker socket (or podman's): container names and images.
# Arguments go to tapwire: `docker run ... tapwire capture --json`, `... tapwire doctor`.
#
# BASE chooses the Debian bookworm image both stages start from (e.g. a locally imported one:
# `--build-arg BASE=localhost/my-bookworm`). Behind a proxy that inspects TLS, give the build
# the certificates to trust for the npm registry (a PEM bundle; without it none are added):
#   docker build --secret id=extra-ca,src=/etc/ssl/certs/ca-certificates.crt -t tapwire .
ARG BASE=debian:bookworm-slim

# Build stage: the BPF object is compiled against the BTF of the build host's kernel, read
# from /sys/kernel/btf/vmlinux, which builds see (CO-RE makes the object portable to other
# kernels with BTF); then bun compiles one executable with it embedded. Only files in git
# are used: everything generated (build/, src/gen/, src/bpf/gen/) is made here.
FROM ${BASE} AS build
ARG BUN_VERSION=1.4.5
RUN --mount=type=secret,id=extra-ca \
    apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      clang llvm bpftool libbpf-dev libbpf1 npm ca-certificates \
 && if [ -s /run/secrets/extra-ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/extra-ca; fi \
 && npm install -g "bun@${BUN_VERSION}" \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /root/.npm
WORKDIR /src
COPY package.json bun.lock bunfig.toml tsconfig.json ./
RUN --mount=type=secret,id=extra-ca \
    if [ -s /run/secrets/extra-ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/extra-ca; fi \
 && bun install --frozen-lockfile
COPY buf.yaml buf.gen.yaml ./
COPY bpf bpf
COPY proto proto
COPY scripts scripts
COPY src src
COPY web web
RUN bash scripts/build.sh

# Runtime: libbpf1 is all the executable needs (its JavaScript runtime is inside it).
FROM ${BASE}
RUN apt-get update -q \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends libbpf1 \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/dist/tapwire /usr/local/bin/tapwire
ENTRYPOINT ["/usr/local/bin/tapwire"]
CMD ["capture"]
