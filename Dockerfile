# tapwire in a container, next to the containers it watches:
#   docker build -t tapwire .
#   docker run --rm -it --pid=host --privileged \
#     -v /sys/kernel:/sys/kernel -v /var/run/docker.sock:/var/run/docker.sock tapwire
#
# Build stage: the BPF object is compiled against the BTF of the build host's kernel
# (CO-RE makes it portable), then bun compiles one executable with it embedded.
FROM debian:bookworm-slim AS build
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends clang llvm bpftool libbpf-dev libbpf1 npm ca-certificates \
 && npm install -g bun@1.4.5 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json bun.lock bunfig.toml buf.gen.yaml tsconfig.json ./
RUN bun install --frozen-lockfile
COPY bpf bpf
COPY proto proto
COPY scripts scripts
COPY src src
RUN bash scripts/build.sh

# Runtime: libbpf1 is all the executable needs.
FROM debian:bookworm-slim
RUN apt-get update -q \
 && apt-get install -y -q --no-install-recommends libbpf1 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/dist/tapwire /usr/local/bin/tapwire
ENTRYPOINT ["/usr/local/bin/tapwire"]
CMD ["capture"]
