# One image with the three services and wsusctl; the command picks one:
#   docker run IMAGE client-gateway | sync-worker | reporting | wsusctl ...
# Build: docker build -t wsus:dev .
# (Not built in CI here: no container engine runs on the CI machines.)

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bins \
    && mkdir /out \
    && cp target/release/client-gateway target/release/sync-worker target/release/reporting target/release/wsusctl /out/

# glibc, libgcc and CA certificates, no shell; runs as uid 65532.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
USER 65532:65532
EXPOSE 8530 8531 8080 8081 50051 50052
CMD ["client-gateway"]
