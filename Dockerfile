# One image with the three services and wsusctl; the command picks one:
#   docker run IMAGE client-gateway | sync-worker | reporting | wsusctl ...
# Build: docker build -t wsus:dev .
#
# The runtime base is a build argument: distroless/cc (glibc, libgcc, CA certificates, no
# shell, no package manager) by default; scripts/image passes the same made locally. The
# binaries come from the Rust stage below, or (BINARIES=prebuilt, as scripts/image does)
# from a build context that holds only them, so a host that has built them does not
# compile again.
ARG BASE=gcr.io/distroless/cc-debian12:nonroot
ARG BINARIES=compiled

FROM docker.io/library/rust:1.95-bookworm AS compiled
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bins \
    && mkdir /out \
    && for b in client-gateway sync-worker reporting wsusctl; do strip --strip-debug -o /out/$b target/release/$b; done

FROM scratch AS prebuilt
COPY client-gateway sync-worker reporting wsusctl /out/

FROM ${BINARIES} AS binaries

FROM ${BASE}
COPY --from=binaries /out/ /usr/local/bin/
USER 65532:65532
EXPOSE 8530 8531 8080 8081 50051 50052
CMD ["client-gateway"]
