// Shared helpers for the gateway's pages. Plain browser JavaScript, no build step.
"use strict";

const Gateway = (() => {
  /** Labels shown for each protocol key of the API's `urls` and `viewers` objects. */
  const PROTOCOL_LABELS = {
    hls: "HLS",
    http_flv: "HTTP-FLV",
    ws_flv: "WebSocket-FLV",
    rtmp: "RTMP",
    rtsp: "RTSP",
    mms: "MMS",
    rtmps: "RTMPS",
    rtsps: "RTSPS",
  };

  /** Display names of the codec identifiers ingest reports. */
  const CODEC_LABELS = {
    h264: "H.264", h265: "H.265", hevc: "H.265", av1: "AV1", vp9: "VP9",
    aac: "AAC", mp3: "MP3", opus: "Opus", speex: "Speex", pcma: "G.711 A-law", pcmu: "G.711 µ-law",
  };

  function codecLabel(id) {
    return CODEC_LABELS[String(id).toLowerCase()] || String(id);
  }

  /**
   * The API token, when the gateway asks for one (`auth.api_token`): read from this page's own
   * URL (`/?token=...`, `/player.html?stream=...&token=...`) and sent to the API as a Bearer
   * header, never put into stream URLs.
   */
  const apiToken = new URLSearchParams(location.search).get("token");

  /** `href` (a link to another page of the gateway) carrying the API token, if there is one. */
  function withToken(href) {
    if (!apiToken) return href;
    return `${href}${href.includes("?") ? "&" : "?"}token=${encodeURIComponent(apiToken)}`;
  }

  /** Fetches JSON and throws with the HTTP status when the answer is not 2xx. */
  async function getJson(path) {
    const headers = apiToken ? { Authorization: `Bearer ${apiToken}` } : {};
    const response = await fetch(path, { cache: "no-store", headers });
    if (!response.ok) {
      const error = new Error(`${path}: HTTP ${response.status}`);
      error.status = response.status;
      throw error;
    }
    return response.json();
  }

  function describeVideo(s) {
    if (!s.video_codec) return "—";
    const parts = [codecLabel(s.video_codec)];
    if (s.width && s.height) parts.push(`${s.width}×${s.height}`);
    if (s.fps) parts.push(`${Number(s.fps).toFixed(s.fps % 1 ? 2 : 0)} fps`);
    return parts.join(" · ");
  }

  function describeAudio(s) {
    if (!s.audio_codec) return "—";
    const parts = [codecLabel(s.audio_codec)];
    if (s.sample_rate) parts.push(`${(s.sample_rate / 1000).toFixed(1).replace(/\.0$/, "")} kHz`);
    if (s.channels) parts.push(s.channels === 1 ? "mono" : s.channels === 2 ? "stereo" : `${s.channels} ch`);
    return parts.join(" · ");
  }

  function describeBitrate(kbps) {
    if (kbps == null) return "–";
    return kbps >= 1000 ? `${(kbps / 1000).toFixed(2)} Mbit/s` : `${Math.round(kbps)} kbit/s`;
  }

  function describeUptime(secs) {
    if (secs == null) return "–";
    const s = Math.floor(secs % 60), m = Math.floor(secs / 60) % 60, h = Math.floor(secs / 3600);
    const pad = (n) => String(n).padStart(2, "0");
    return h > 0 ? `${h}:${pad(m)}:${pad(s)}` : `${m}:${pad(s)}`;
  }

  function describeViewers(viewers) {
    const entries = Object.entries(viewers || {}).filter(([, n]) => n > 0);
    if (entries.length === 0) return "0";
    const total = entries.reduce((sum, [, n]) => sum + n, 0);
    const detail = entries.map(([p, n]) => `${PROTOCOL_LABELS[p] || p} ${n}`).join(", ");
    return `${total} (${detail})`;
  }

  /** Copies text; falls back to a hidden textarea where the Clipboard API needs a secure context. */
  async function copyText(text, button) {
    try {
      if (navigator.clipboard && window.isSecureContext) {
        await navigator.clipboard.writeText(text);
      } else {
        const area = document.createElement("textarea");
        area.value = text;
        area.setAttribute("readonly", "");
        area.style.position = "fixed";
        area.style.opacity = "0";
        document.body.appendChild(area);
        area.select();
        document.execCommand("copy");
        area.remove();
      }
      flash(button, "Copied");
    } catch (e) {
      flash(button, "Copy failed");
    }
  }

  function flash(button, text) {
    if (!button) return;
    const original = button.dataset.label || button.textContent;
    button.dataset.label = original;
    button.textContent = text;
    button.classList.add("flash");
    setTimeout(() => {
      button.textContent = original;
      button.classList.remove("flash");
    }, 1200);
  }

  /** Fills every `[data-field=name]` element below `root` with the text of `values[name]`. */
  function fill(root, values) {
    for (const [name, value] of Object.entries(values)) {
      const el = root.querySelector(`[data-field="${name}"]`);
      if (el) el.textContent = value;
    }
  }

  function factsOf(s) {
    return {
      video: describeVideo(s),
      audio: describeAudio(s),
      bitrate: describeBitrate(s.bitrate_kbps),
      uptime: describeUptime(s.uptime_secs),
      viewers: describeViewers(s.viewers),
    };
  }

  // Links back to the stream list keep the API token (the list's page needs it too).
  for (const a of document.querySelectorAll('a[href="/"]')) a.href = withToken("/");

  return { PROTOCOL_LABELS, getJson, withToken, copyText, fill, factsOf };
})();
