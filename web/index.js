// The stream list: polls /api/streams and renders one card per live stream.
"use strict";

(() => {
  const POLL_INTERVAL_MS = 2000;
  const grid = document.getElementById("streams");
  const empty = document.getElementById("empty");
  const status = document.getElementById("status");
  const summary = document.getElementById("summary");
  const template = document.getElementById("stream-card");
  const cards = new Map(); // stream key -> card element

  document.getElementById("publish-example").textContent =
    `ffmpeg -re -i input.mp4 -c copy -f flv rtmp://${location.hostname}/live/test`;

  function playerHref(key) {
    return Gateway.withToken(`/player.html?stream=${encodeURIComponent(key)}`);
  }

  function createCard(stream) {
    const card = template.content.firstElementChild.cloneNode(true);
    card.dataset.key = stream.key;
    card.querySelector('[data-field="link"]').href = playerHref(stream.key);
    card.querySelector('[data-field="play"]').href = playerHref(stream.key);
    card.querySelector('[data-field="copy-hls"]').addEventListener("click", (e) =>
      Gateway.copyText(card.urls.hls, e.currentTarget));
    card.querySelector('[data-field="copy-flv"]').addEventListener("click", (e) =>
      Gateway.copyText(card.urls.http_flv, e.currentTarget));
    return card;
  }

  function render(streams) {
    const seen = new Set();
    for (const stream of streams) {
      seen.add(stream.key);
      let card = cards.get(stream.key);
      if (!card) {
        card = createCard(stream);
        cards.set(stream.key, card);
        grid.appendChild(card);
      }
      card.urls = stream.urls || {};
      card.querySelector('[data-field="copy-hls"]').hidden = !card.urls.hls;
      Gateway.fill(card, { key: stream.key, ...Gateway.factsOf(stream) });
    }
    for (const [key, card] of cards) {
      if (!seen.has(key)) {
        card.remove();
        cards.delete(key);
      }
    }
    empty.hidden = streams.length > 0;
    const viewers = streams.reduce(
      (sum, s) => sum + Object.values(s.viewers || {}).reduce((a, b) => a + b, 0), 0);
    summary.textContent = streams.length === 0 ? "\u00a0"
      : `${streams.length} live stream${streams.length === 1 ? "" : "s"} · ${viewers} viewer${viewers === 1 ? "" : "s"}`;
  }

  async function poll() {
    try {
      const body = await Gateway.getJson("/api/streams");
      render(body.streams || []);
      status.textContent = `Updated ${new Date().toLocaleTimeString()}`;
      status.classList.remove("error");
    } catch (e) {
      status.textContent = e.status === 401
        ? "This gateway needs its API token: open this page as /?token=<token>"
        : "Gateway unreachable";
      status.classList.add("error");
    } finally {
      setTimeout(poll, POLL_INTERVAL_MS);
    }
  }

  poll();
})();
