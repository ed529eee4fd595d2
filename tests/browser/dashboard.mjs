// Loads the ceilo dashboard in headless Debian chromium and checks that it lists
// cpu_util and draws a chart with a series per resource, and lists the newest events;
// saves a screenshot.
// With a third argument `plugins`, it instead waits for the plugins panel and reports
// the plugins it lists.
// Usage: node dashboard.mjs URL SCREENSHOT.png [plugins]
import { chromium } from "playwright-core";

const [url, screenshot, mode] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const fail = async (msg) => {
  console.error(msg);
  await browser.close();
  process.exit(1);
};
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 700 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(url, { waitUntil: "load" });
  if (mode === "plugins") {
    await page.waitForSelector("#plugins tbody tr", { timeout: 15000 });
    const panel = await page.evaluate(() => ({
      visible: !document.getElementById("plugins-panel").hidden,
      plugins: [...document.querySelectorAll("#plugins tbody tr")].map((r) => r.dataset.plugin),
      summary: document.getElementById("plugins-summary").textContent,
    }));
    await page.screenshot({ path: screenshot, fullPage: true });
    console.log(JSON.stringify(panel));
    if (errors.length) await fail(`page errors: ${errors.join("; ")}`);
    await browser.close();
    process.exit(0);
  }
  await page.waitForSelector('nav button[data-meter="cpu_util"]', { timeout: 15000 });
  const current = await page.getAttribute('nav button[data-meter="cpu_util"]', "aria-current");
  if (current !== "true") await fail(`cpu_util is not the chosen meter (aria-current=${current})`);
  await page.waitForSelector("#chart canvas", { timeout: 15000 });
  await page.waitForSelector("#events tbody tr", { timeout: 15000 });
  const chart = await page.evaluate(() => {
    const c = document.querySelector("#chart canvas");
    const d = document.getElementById("chart").dataset;
    return { width: c.width, height: c.height, series: Number(d.series), points: Number(d.points),
      title: document.getElementById("title").textContent, error: document.getElementById("error").textContent,
      legend: [...document.querySelectorAll(".u-legend .u-series th")].map((t) => t.textContent.trim()),
      plugins_hidden: document.getElementById("plugins-panel").hidden,
      events: [...document.querySelectorAll("#events tbody tr")].map((r) => r.dataset.event),
      events_summary: document.getElementById("events-summary").textContent };
  });
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(JSON.stringify(chart));
  if (errors.length) await fail(`page errors: ${errors.join("; ")}`);
  if (chart.error) await fail(`the page shows an error: ${chart.error}`);
  if (chart.title !== "cpu_util") await fail(`title is ${chart.title}`);
  if (!(chart.width > 0 && chart.height > 0)) await fail("the chart canvas is empty");
  if (!(chart.series >= 1 && chart.points >= 1)) await fail(`no data plotted: ${JSON.stringify(chart)}`);
} catch (e) {
  await fail(String(e));
}
await browser.close();
