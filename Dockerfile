# Build a static binary, then ship it alone in a minimal image.
FROM golang:1.24-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/source-stripe .

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/source-stripe /usr/local/bin/source-stripe
ENV AIRBYTE_ENTRYPOINT="/usr/local/bin/source-stripe"
ENTRYPOINT ["/usr/local/bin/source-stripe"]
