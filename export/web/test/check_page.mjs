// Drives export/web/index.html in headless Chromium (Debian's, through playwright-core; no
// browser download): loads a tagger, tags an audio file, optionally listens to Chromium's
// fake microphone, saves a screenshot, and prints what the page computed as JSON.
//
//   node test/check_page.mjs URL TAGGER.tflite AUDIO [SCREENSHOT.png] [--microphone]

import {chromium} from "playwright-core";

const [url, model, audio, screenshot] = process.argv.slice(2).filter((a) => !a.startsWith("--"));
const microphone = process.argv.includes("--microphone");
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
         "--autoplay-policy=no-user-gesture-required"],
});
try {
  const page = await browser.newPage({viewport: {width: 1120, height: 900}});
  const logs = [];
  page.on("console", (m) => logs.push(`${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => logs.push(`pageerror: ${e.message}`));
  await page.goto(url);
  await page.setInputFiles("#model-file", model);
  await page.waitForSelector("body:is([data-model=ready], [data-model=failed])");
  const ready = (await page.getAttribute("body", "data-model")) === "ready";
  if (ready) {
    await page.setInputFiles("#audio-file", audio);
    await page.waitForSelector("body:is([data-state=done], [data-state=failed])",
                               {timeout: 120000});
  }
  const out = {
    model: await page.getAttribute("body", "data-model"),
    state: await page.getAttribute("body", "data-state"),
    status: await page.textContent("#status"),
    info: await page.textContent("#model-info"),
    result: await page.evaluate(() => window.taggerResult || null),
    overallShown: await page.$$eval("#overall li", (li) => li.map((x) => +x.dataset.index)),
    top3Shown: await page.$$eval("#windows tbody tr",
                                 (tr) => tr.map((x) => x.dataset.top3.split(",").map(Number))),
  };
  if (screenshot) await page.screenshot({path: screenshot, fullPage: true});
  if (microphone && ready) {
    await page.click("#mic");
    await page.waitForSelector("body[data-state=listening]");
    await page.waitForFunction(
      () => document.querySelectorAll("#windows tbody tr").length >= 2, null,
      {timeout: 30000});
    out.microphoneWindows = await page.$$eval("#windows tbody tr", (tr) => tr.length);
    await page.click("#mic");
  }
  out.logs = logs;
  console.log(JSON.stringify(out));
} finally {
  await browser.close();
}
