# Shared by scripts/test and .ci/run (sourced, not executed): the Debian 12 packages the test suite
# drives as real clients, and a function that installs whichever of them are missing.

# ffmpeg/ffprobe, GStreamer (gst-launch-1.0, rtmp2src/rtmp2sink, rtmpsink, avdec_*), VLC (cvlc),
# rtmpdump (librtmp), Chromium (hls.js / flv.js playback), docker-compose (compose file check),
# wrk (HTTP load runs), ca-certificates (npm over TLS), g++ (libFuzzer, built by scripts/fuzz),
# openssl (signs links with the recipe README.md documents, in auth.rs and rtsp_auth.rs),
# glib-networking (GIO's TLS backend: GStreamer's rtspsrc playing rtsps://),
# prometheus (promtool checks config/monitoring/prometheus.yml in tests/tests/container.rs).
DEBIAN_PACKAGES=(
    ffmpeg
    gstreamer1.0-tools
    gstreamer1.0-plugins-base
    gstreamer1.0-plugins-good
    gstreamer1.0-plugins-bad
    gstreamer1.0-plugins-ugly
    gstreamer1.0-libav
    vlc-bin
    vlc-plugin-base
    rtmpdump
    chromium
    docker-compose
    wrk
    ca-certificates
    g++
    openssl
    glib-networking
    prometheus
)

# Prints the packages of DEBIAN_PACKAGES that dpkg does not report as installed, and Debian's npm
# (which brings nodejs) when no npm is on PATH: `npm ci --prefix web` installs the player
# libraries. A Node.js installed another way (e.g. NodeSource, whose nodejs ships npm) is kept.
missing_debian_packages() {
    local p
    for p in "${DEBIAN_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' \
            || echo "$p"
    done
    command -v npm >/dev/null || echo npm
}

# Installs the missing packages with apt-get when running as root on Debian; otherwise warns (the
# tests that need a missing tool then print SKIPPED, or fail when CI is set). Runs apt-get update
# only when something is missing, so a second run does no network work.
install_missing_debian_packages() {
    command -v dpkg-query >/dev/null || { echo "deps: not Debian; skipping package check" >&2; return 0; }
    local missing
    mapfile -t missing < <(missing_debian_packages)
    [ "${#missing[@]}" -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "deps: missing Debian packages (run as root to install): ${missing[*]}" >&2
        return 0
    fi
    echo "deps: installing ${missing[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q "${missing[@]}"
}
