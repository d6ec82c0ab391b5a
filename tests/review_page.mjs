// Drives tfsk_review's page in headless Chromium (Debian's, through export/web's
// playwright-core): answers the first candidates with the keys, goes back once, reloads,
// saves a screenshot, and prints what the page showed as JSON.
//
//   node tests/review_page.mjs URL SCREENSHOT.png   (WEB_DIR: export/web, for its modules)

import {createRequire} from "module";
import path from "path";

const require = createRequire(path.join(process.env.WEB_DIR, "package.json"));
const {chromium} = require("playwright-core");
const [url, screenshot] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--autoplay-policy=no-user-gesture-required"],
});
const reviewed = (page) => page.getAttribute("#counts", "data-reviewed").then(Number);

// n answered from the start: the count says n and the page shows candidate n.
async function waitReviewed(page, n) {
  try {
    await page.waitForFunction(
        (k) => Number(document.querySelector("#counts").dataset.reviewed) === k &&
               Number(document.body.dataset.pos) === k, n,
        {timeout: 60000});
  } catch (e) {
    throw new Error(`${e.message}; the page said: ${await page.textContent("#counts")} / ` +
                    `${await page.textContent("#error")}`);
  }
}

try {
  const page = await browser.newPage({viewport: {width: 1000, height: 820}});
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(url);
  await page.waitForSelector("body[data-ready='1']");
  const first = {pos: Number(await page.getAttribute("body", "data-pos")),
                 name: await page.textContent("#name"), clip: await page.textContent("#clip")};
  const start = await reviewed(page);
  const shown = [];
  for (const [key, n] of [["p", 1], ["a", 2], ["u", 3]]) {
    shown.push({pos: Number(await page.getAttribute("body", "data-pos")),
                clip: await page.textContent("#clip"), name: await page.textContent("#name")});
    await page.keyboard.press(key);
    await waitReviewed(page, start + n);
  }
  await page.keyboard.press("b");  // back: the third candidate again, with its answer
  await page.waitForFunction(() => document.body.dataset.pos === "2");
  const back = {pos: 2, answer: await page.textContent("#answer")};
  await page.reload();
  await page.waitForSelector("body[data-ready='1']");
  const after = {reviewed: await reviewed(page),
                 pos: Number(await page.getAttribute("body", "data-pos")),
                 counts: await page.textContent("#counts")};
  await page.waitForFunction(() => document.querySelector("#logmel").complete);
  if (screenshot) await page.screenshot({path: screenshot, fullPage: true});
  console.log(JSON.stringify({first, start, shown, back, after, errors,
                              logmelWidth: await page.$eval("#logmel", (i) => i.naturalWidth)}));
} finally {
  await browser.close();
}
