# jwtgate container image: built in a Go stage, run from distroless as a
# non-root user with the default settings. The test suite does not build it
# (no container engine or base-image pulls there); the packaging tests in
# tests/platforms_packaging_test.go check what it says.
#   docker build --build-arg VERSION=v1.0.0 -t jwtgate .
#   docker run -p 8001:8001 -e JWTGATE_AUTH_SERVICE_URL=http://auth:8000 \
#     -v /srv/jwtgate/settings.yaml:/etc/jwtgate/settings.yaml:ro jwtgate

FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# cgo: the SQLite driver is C and links glibc, which the runtime image has.
# nomsgpack: gin's MessagePack binding (unused) stays out: 6 MB less code.
RUN CGO_ENABLED=1 go build -tags nomsgpack -trimpath -buildvcs=false \
      -ldflags "-s -w -X main.version=${VERSION}" -o /out/jwtgate . \
 && mkdir -p /out/state

FROM gcr.io/distroless/base-debian12:nonroot
COPY --from=build /out/jwtgate /usr/local/bin/jwtgate
COPY --from=build /src/settings.yaml /etc/jwtgate/settings.yaml
# The SQLite mirror (database.dsn: jwtgate.db) and the identity token key
# (identity_token.key_file) are relative to the working directory.
COPY --from=build --chown=65532:65532 /out/state /var/lib/jwtgate
WORKDIR /var/lib/jwtgate
VOLUME ["/var/lib/jwtgate"]
USER 65532:65532
ENV JWTGATE_CONFIG=/etc/jwtgate/settings.yaml \
    JWTGATE_LISTEN=0.0.0.0:8001
EXPOSE 8001
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["/usr/local/bin/jwtgate", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/jwtgate"]
CMD ["serve"]
