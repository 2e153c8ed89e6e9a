# The media gateway as a container image.
#
#   docker build -t media-gateway .            (or: docker-compose up --build)
#   docker run -p 1935:1935 -p 8080:8080 -p 8554:8554 -p 1755:1755 media-gateway
#
# Stage 1 builds the release binary, stage 2 installs the web page's JavaScript players
# (hls.js, mpegts.js; no dev dependencies), and the runtime stage holds only the binary, the web
# page and the default configuration. `scripts/check-image-build` runs the build stage's command
# from a clean clone without Docker, then the built binary's healthcheck against it.

FROM rust:1-bookworm AS builder
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p gateway \
    && cp target/release/gateway /usr/local/bin/gateway

FROM node:20-bookworm-slim AS web
WORKDIR /web
COPY web/package.json web/package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY web/ ./

FROM debian:bookworm-slim
RUN apt-get update -q \
    && apt-get install -y -q --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home-dir /srv/gateway --shell /usr/sbin/nologin gateway
# The default config's `http.web_root = "web"` is relative to the working directory.
WORKDIR /srv/gateway
COPY --from=builder /usr/local/bin/gateway /usr/local/bin/gateway
COPY --from=web /web ./web
COPY config/gateway.toml /etc/gateway/gateway.toml
# RTMP, HTTP (HTTP-FLV, HLS, MMSH, web page, API), RTSP, MMST; RTP/RTCP over UDP for RTSP.
EXPOSE 1935 8080 8554 1755
EXPOSE 20000-20999/udp
USER gateway
STOPSIGNAL SIGTERM
# The image has no curl: the binary asks its own /healthz (exit 0 for a 200 within 3 s, else 1).
# With another http.listen port, override it: `gateway healthcheck http://127.0.0.1:PORT/healthz`.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["gateway", "healthcheck", "http://127.0.0.1:8080/healthz"]
CMD ["gateway", "--config", "/etc/gateway/gateway.toml"]
