// Headless Chromium check of the web page, driven by playwright-core (a devDependency).
//
//   node tests/browser.mjs --base http://127.0.0.1:8080 --stream live/test --tech hls \
//       [--seconds 5] [--screenshots DIR] [--query 'token=API_TOKEN&play_token=T']
//
// Opens the stream list and waits for the stream's card, then opens the player page and waits
// until `video.currentTime` passes --seconds. Prints one JSON line with what it saw and exits 0 on
// success, 1 on failure. The Rust integration tests run it against an in-process gateway.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";

const { values: args } = parseArgs({
  options: {
    base: { type: "string" },
    stream: { type: "string", default: "live/test" },
    tech: { type: "string", default: "hls" },
    seconds: { type: "string", default: "5" },
    timeout: { type: "string", default: "40" },
    screenshots: { type: "string" },
    // Appended to both pages' URLs: the API token (`token`) and a play token (`play_token`).
    query: { type: "string", default: "" },
    chromium: { type: "string", default: process.env.CHROMIUM || "/usr/bin/chromium" },
  },
});
if (!args.base) {
  console.error("--base is required");
  process.exit(2);
}

const seconds = Number(args.seconds);
const timeoutMs = Number(args.timeout) * 1000;
const profile = mkdtempSync(join(tmpdir(), "gateway-chromium-"));
const report = { tech: args.tech, stream: args.stream, ok: false };

const context = await chromium.launchPersistentContext(profile, {
  executablePath: args.chromium,
  headless: true,
  // The TLS tests serve the page over HTTPS with a certificate from a CA made at run time.
  ignoreHTTPSErrors: args.base.startsWith("https:"),
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
  ],
});

try {
  const page = await context.newPage();
  const consoleErrors = [];
  page.on("console", (msg) => { if (msg.type() === "error") consoleErrors.push(msg.text()); });
  page.on("pageerror", (err) => consoleErrors.push(String(err)));

  const extra = args.query ? `&${args.query}` : "";
  await page.goto(`${args.base}/${args.query ? `?${args.query}` : ""}`);
  const card = page.locator(`.stream-card[data-key="${args.stream}"]`);
  await card.waitFor({ timeout: 10_000 });
  report.listVideo = await card.locator('[data-field="video"]').textContent();
  if (args.screenshots) await page.screenshot({ path: join(args.screenshots, "list.png") });

  const started = Date.now();
  const stream = encodeURIComponent(args.stream);
  await page.goto(`${args.base}/player.html?stream=${stream}&tech=${args.tech}${extra}`);
  await page.waitForFunction(
    (min) => document.getElementById("video").currentTime > min,
    seconds,
    { timeout: timeoutMs, polling: 250 },
  );
  report.wallSeconds = (Date.now() - started) / 1000;
  Object.assign(report, await page.evaluate(() => {
    const v = document.getElementById("video");
    return {
      currentTime: v.currentTime,
      videoWidth: v.videoWidth,
      videoHeight: v.videoHeight,
      engine: window.gatewayPlayer.engine,
      playerErrors: window.gatewayPlayer.errors,
      urls: [...document.querySelectorAll(".url-row .url-label")].map((e) => e.textContent),
      // What the page asked for, to check the credentials it sent (resource timing keeps URLs).
      requested: performance.getEntriesByType("resource").map((e) => e.name),
    };
  }));
  if (args.screenshots) await page.screenshot({ path: join(args.screenshots, `player-${args.tech}.png`) });
  report.consoleErrors = consoleErrors;
  report.ok = true;
} catch (e) {
  report.error = String(e && e.message ? e.message.split("\n")[0] : e);
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}

console.log(JSON.stringify(report));
process.exit(report.ok ? 0 : 1);
