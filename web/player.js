// The player page: /player.html?stream=<app>/<name>[&tech=hls|flv|ws][&token=<API token>]
// [&play_token=<play token>].
// HLS plays through hls.js where Media Source Extensions exist and natively where the browser
// plays HLS itself (Safari); HTTP-FLV and WebSocket-FLV play through mpegts.js.
// A stream that needs a credential to play gets the one the API's URLs carry (a signed link,
// when its rule asks for one), or else `?token=<play_token>` from this page's URL.
"use strict";

(() => {
  const INFO_POLL_MS = 3000;
  const RETRY_MS = 3000;
  const params = new URLSearchParams(location.search);
  const key = (params.get("stream") || location.hash.replace(/^#\/?/, "")).replace(/^\/+|\/+$/g, "");
  const video = document.getElementById("video");
  const overlay = document.getElementById("overlay");
  const stateLine = document.getElementById("playback-state");
  const facts = document.getElementById("facts");

  const TECH_NAMES = { hls: "HLS", flv: "HTTP-FLV", ws: "WebSocket-FLV" };
  let tech = TECH_NAMES[params.get("tech")] ? params.get("tech") : "hls";
  let urls = null;       // the public URLs from the API, once known
  let engine = null;     // { destroy() } of the running hls.js / mpegts.js / native player
  let retryTimer = null;

  /** Reported state, read by the browser tests and handy in the console. */
  window.gatewayPlayer = { key, get tech() { return tech; }, engine: null, errors: [] };

  function showOverlay(text) {
    overlay.textContent = text;
    overlay.hidden = !text;
  }

  function setState(text) {
    stateLine.textContent = text || "\u00a0";
  }

  // Playback always uses this page's own origin: the API's URLs name the public host, which a
  // viewer behind a proxy or port mapping may not reach the same way.
  function playbackUrls() {
    const http = `${location.protocol}//${location.host}`;
    const ws = `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}`;
    const query = playbackQuery();
    return {
      hls: `${http}/${key}/index.m3u8${query}`,
      flv: `${http}/${key}.flv${query}`,
      ws: `${ws}/${key}.flv${query}`,
    };
  }

  /** The credential of the playback URLs: the API's (signed) query, or the page's play_token. */
  function playbackQuery() {
    const apiUrl = urls && (urls.hls || urls.http_flv);
    const signed = apiUrl ? new URL(apiUrl).search : "";
    if (signed) return signed;
    const token = params.get("play_token");
    return token ? `?token=${encodeURIComponent(token)}` : "";
  }

  function stop() {
    clearTimeout(retryTimer);
    if (engine) {
      try { engine.destroy(); } catch (e) { /* the engine is gone either way */ }
      engine = null;
    }
    window.gatewayPlayer.engine = null;
  }

  function retryLater(reason) {
    window.gatewayPlayer.errors.push(String(reason));
    setState(`${reason}; retrying…`);
    stop();
    retryTimer = setTimeout(start, RETRY_MS);
  }

  function startHls(url) {
    if (window.Hls && Hls.isSupported()) {
      const hls = new Hls({ liveSyncDurationCount: 3, enableWorker: true });
      hls.on(Hls.Events.ERROR, (_event, data) => {
        if (!data.fatal) return;
        if (data.type === Hls.ErrorTypes.MEDIA_ERROR) {
          hls.recoverMediaError();
        } else {
          retryLater(`HLS ${data.type}: ${data.details}`);
        }
      });
      hls.loadSource(url);
      hls.attachMedia(video);
      return { name: "hls.js", destroy: () => hls.destroy() };
    }
    if (video.canPlayType("application/vnd.apple.mpegurl")) {
      video.src = url;
      return { name: "native HLS", destroy: () => { video.removeAttribute("src"); video.load(); } };
    }
    return null;
  }

  function startFlv(url) {
    if (!(window.mpegts && mpegts.getFeatureList().mseLivePlayback)) return null;
    const player = mpegts.createPlayer(
      { type: "flv", isLive: true, url },
      { enableWorker: false, lazyLoad: false, liveBufferLatencyChasing: true },
    );
    player.on(mpegts.Events.ERROR, (type, detail) => retryLater(`FLV ${type}: ${detail}`));
    player.on(mpegts.Events.LOADING_COMPLETE, () => retryLater("FLV stream ended"));
    player.attachMediaElement(video);
    player.load();
    return {
      name: "mpegts.js",
      destroy: () => { player.pause(); player.unload(); player.detachMediaElement(); player.destroy(); },
    };
  }

  function start() {
    stop();
    const u = playbackUrls();
    engine = tech === "hls" ? startHls(u.hls) : startFlv(u[tech]);
    if (!engine) {
      showOverlay(`This browser cannot play ${TECH_NAMES[tech]}.`);
      return;
    }
    window.gatewayPlayer.engine = engine.name;
    setState(`Playing over ${TECH_NAMES[tech]} with ${engine.name}.`);
    const attempt = video.play();
    if (attempt && attempt.catch) attempt.catch(() => { /* autoplay may wait for a click */ });
  }

  function selectTech(next) {
    tech = next;
    for (const b of document.querySelectorAll("[data-tech]")) {
      b.classList.toggle("primary", b.dataset.tech === tech);
      b.setAttribute("aria-pressed", String(b.dataset.tech === tech));
    }
    const search = new URLSearchParams(location.search);
    search.set("tech", tech);
    history.replaceState(null, "", `${location.pathname}?${search}`);
    start();
  }

  function renderUrls(list) {
    const ul = document.getElementById("urls");
    const template = document.getElementById("url-row");
    ul.replaceChildren();
    for (const [protocol, url] of Object.entries(list)) {
      if (!url) continue;
      const row = template.content.firstElementChild.cloneNode(true);
      row.querySelector(".url-label").textContent = Gateway.PROTOCOL_LABELS[protocol] || protocol;
      const input = row.querySelector(".url-input");
      input.value = url;
      input.addEventListener("focus", () => input.select());
      row.querySelector(".copy").addEventListener("click", (e) => Gateway.copyText(url, e.currentTarget));
      ul.appendChild(row);
    }
  }

  /** Polls the stream's facts; resolves after the first answer (or failure). */
  async function refreshInfo() {
    try {
      const s = await Gateway.getJson(`/api/streams/${key}`);
      const first = urls === null;
      urls = s.urls;
      if (first) {
        renderUrls(urls);
        // A gateway without HLS: offer only HTTP-FLV.
        if (!urls.hls) {
          document.querySelector('[data-tech="hls"]').hidden = true;
          if (tech === "hls") selectTech("flv");
        }
      }
      Gateway.fill(facts, Gateway.factsOf(s));
      showOverlay("");
    } catch (e) {
      if (e.status === 404) showOverlay("The stream is offline. Waiting for it to start…");
      if (e.status === 401) showOverlay("This gateway needs its API token: add &token=<token> to this page's URL.");
    } finally {
      setTimeout(refreshInfo, INFO_POLL_MS);
    }
  }

  if (!key) {
    document.getElementById("title").textContent = "No stream selected";
    showOverlay("Open a stream from the list.");
    return;
  }
  document.getElementById("title").textContent = key;
  document.title = `${key} · Media Gateway`;
  for (const b of document.querySelectorAll("[data-tech]")) {
    b.addEventListener("click", () => selectTech(b.dataset.tech));
  }
  // The first answer may carry the signed URLs playback needs; play after it either way.
  refreshInfo().finally(() => selectTech(tech));
})();
