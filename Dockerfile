# syntax=docker/dockerfile:1
# Build: docker build -t finesse-relay .
# Run:   docker run -p 1125:1125 -v $PWD/relay.env:/etc/finesse-relay/relay.env:ro finesse-relay
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
# The build stage's command (CI checks it works outside Docker too):
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/finesse-relay ./server
# The state directory (file store, session.key), owned by nonroot so that a
# named volume mounted there (configs/compose) starts writable.
RUN mkdir -p /out/state

FROM gcr.io/distroless/static-debian12:nonroot
LABEL org.opencontainers.image.title="finesse-relay" \
      org.opencontainers.image.description="Cisco Finesse SSO + Notification Service relay for gadgets and browser tabs"
COPY --from=build /out/finesse-relay /usr/local/bin/finesse-relay
COPY --from=build --chown=65532:65532 /out/state /var/lib/finesse-relay
WORKDIR /var/lib/finesse-relay
USER nonroot:nonroot
EXPOSE 1125
ENTRYPOINT ["/usr/local/bin/finesse-relay", "serve", "--config", "/etc/finesse-relay/relay.env"]
