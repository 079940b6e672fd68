# One image for Airbyte and Estuary Flow (README, "Running on Airbyte and
# Estuary Flow"): a static binary with its version stamped in, in a small
# image with CA certificates (HTTPS to api.stripe.com) and a shell (Airbyte
# on Kubernetes starts connectors through sh and $AIRBYTE_ENTRYPOINT).
#
#   docker build --build-arg VERSION=0.1.0 -t source-stripe/source-stripe:0.1.0 .
#
# packaging_test.go holds this file to metadata.yaml and runs its build
# command, since no Docker engine runs where the tests do.

# VERSION is the image tag: metadata.yaml's dockerImageTag.
ARG VERSION=0.1.0

FROM golang:1.26-alpine AS build
ARG VERSION
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.version=${VERSION}" -o /out/source-stripe .

FROM alpine:3.20
ARG VERSION
RUN apk add --no-cache ca-certificates \
 && addgroup -S airbyte \
 && adduser -S -D -H -h /airbyte -G airbyte airbyte \
 && mkdir -p /airbyte \
 && chown airbyte:airbyte /airbyte
COPY --from=build /out/source-stripe /usr/local/bin/source-stripe
WORKDIR /airbyte
USER airbyte

# Airbyte runs the entrypoint with a command (spec, check, discover, read).
ENV AIRBYTE_ENTRYPOINT="/usr/local/bin/source-stripe"
# Estuary Flow runs it with no command and speaks its capture protocol, in
# JSON, on stdin and stdout.
ENV FLOW_RUNTIME_CODEC=json
ENTRYPOINT ["/usr/local/bin/source-stripe"]

LABEL io.airbyte.name="source-stripe/source-stripe" \
      io.airbyte.version="${VERSION}" \
      FLOW_RUNTIME_PROTOCOL="capture" \
      FLOW_RUNTIME_CODEC="json"
