// Tags audio in the browser with a tf_skeptical tagger through MediaPipe's Audio Classifier
// (@mediapipe/tasks-audio, served from ./node_modules after `npm ci`).
//
// MediaPipe cuts audio into consecutive windows of the model's input length (0.975 s for
// our taggers), zero-pads the last, and returns one result per window; the page shows each
// window's top classes, a timeline of the recording's leading classes, and the mean over
// windows. The tagger's own description (tagger.json, packed in the .tflite file by
// tfsk_export) gives the window length used for the microphone.

import {AudioClassifier, FilesetResolver} from
  "./node_modules/@mediapipe/tasks-audio/audio_bundle.mjs";

const WASM = new URL("./node_modules/@mediapipe/tasks-audio/wasm", import.meta.url).href;
const SAMPLE_RATE = 16000;
const TIMELINE_ROWS = 8;
const $ = (id) => document.getElementById(id);

let classifier = null;
let settings = null;          // tagger.json from the model file, if present
let windows = [];             // [{start seconds, scores Float32Array}]
let classNames = [];
let microphone = null;

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

// ---- the model file --------------------------------------------------------------------

// A file from the uncompressed zip that tfsk_export appends to the .tflite file (where
// MediaPipe also finds the class labels), or null.
function packedFile(bytes, name) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let end = -1;
  for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 65557); i--) {
    if (view.getUint32(i, true) === 0x06054b50) { end = i; break; }
  }
  if (end < 0) return null;
  const count = view.getUint16(end + 10, true);
  const cdSize = view.getUint32(end + 12, true);
  const cdOffset = view.getUint32(end + 16, true);
  const shift = end - cdSize - cdOffset;  // bytes before the archive: the model itself
  let p = cdOffset + shift;
  for (let k = 0; k < count; k++) {
    if (view.getUint32(p, true) !== 0x02014b50) return null;
    const method = view.getUint16(p + 10, true);
    const size = view.getUint32(p + 20, true);
    const nameLength = view.getUint16(p + 28, true);
    const skip = nameLength + view.getUint16(p + 30, true) + view.getUint16(p + 32, true);
    const local = view.getUint32(p + 42, true) + shift;
    const entry = new TextDecoder().decode(bytes.subarray(p + 46, p + 46 + nameLength));
    if (entry === name && method === 0) {
      const start = local + 30 + view.getUint16(local + 26, true) +
        view.getUint16(local + 28, true);
      return bytes.subarray(start, start + size);
    }
    p += 46 + skip;
  }
  return null;
}

async function loadModel(bytes, label) {
  setStatus(`Loading ${label} ...`);
  document.body.dataset.model = "loading";
  try {
    const fileset = await FilesetResolver.forAudioTasks(WASM);
    const next = await AudioClassifier.createFromOptions(fileset, {
      baseOptions: {modelAssetBuffer: bytes}, maxResults: -1});
    if (classifier) classifier.close();
    classifier = next;
  } catch (e) {
    document.body.dataset.model = "failed";
    setStatus(`${label} did not load: ${e.message || e}`, true);
    return;
  }
  const json = packedFile(bytes, "tagger.json");
  settings = json ? JSON.parse(new TextDecoder().decode(json)) : null;
  $("model-info").textContent = settings
    ? `${label}: ${settings.model}, ${settings.num_classes} classes, ` +
      `${(settings.window_samples / settings.sample_rate).toFixed(3)} s windows ` +
      `at ${settings.sample_rate} Hz`
    : `${label}: loaded (no tagger.json inside: not a tf_skeptical export?)`;
  document.body.dataset.model = "ready";
  $("mic").disabled = false;
  setStatus("Tagger ready. Drop an audio file, choose one, or start the microphone.");
}

// ---- audio -----------------------------------------------------------------------------

// Any format the browser decodes -> mono float32 at 16 kHz (decodeAudioData resamples to
// the context's rate; channels are averaged, as tf_skeptical's own readers do).
async function decodeAudio(arrayBuffer) {
  const context = new OfflineAudioContext(1, 1, SAMPLE_RATE);
  const decoded = await context.decodeAudioData(arrayBuffer);
  const mono = new Float32Array(decoded.length);
  for (let c = 0; c < decoded.numberOfChannels; c++) {
    const channel = decoded.getChannelData(c);
    for (let i = 0; i < mono.length; i++) mono[i] += channel[i] / decoded.numberOfChannels;
  }
  return mono;
}

function scoresOf(result) {
  const heads = result.classifications;
  const head = heads.find((h) => h.headName === "scores") || heads[0];
  const scores = new Float32Array(head.categories.length);
  for (const c of head.categories) {
    scores[c.index] = c.score;
    classNames[c.index] = c.categoryName || c.displayName || `class ${c.index}`;
  }
  return scores;
}

function classify(samples, offsetSeconds) {
  const results = classifier.classify(samples, SAMPLE_RATE);
  return results.map((r, i) => ({
    start: offsetSeconds + (r.timestampMs ?? i * 975) / 1000, scores: scoresOf(r)}));
}

async function tagFile(file) {
  if (!classifier) { setStatus("Load a tagger first.", true); return; }
  stopMicrophone();
  document.body.dataset.state = "working";
  setStatus(`Decoding ${file.name} ...`);
  try {
    const samples = await decodeAudio(await file.arrayBuffer());
    setStatus(`Tagging ${file.name} (${(samples.length / SAMPLE_RATE).toFixed(1)} s) ...`);
    windows = classify(samples, 0);
    render(file.name);
    setStatus(`${file.name}: ${windows.length} windows of ` +
              `${(samples.length / SAMPLE_RATE).toFixed(2)} s of audio.`);
    document.body.dataset.state = "done";
  } catch (e) {
    document.body.dataset.state = "failed";
    setStatus(`${file.name}: ${e.message || e}`, true);
  }
}

async function startMicrophone() {
  const windowSamples = settings ? settings.window_samples : 15600;
  const stream = await navigator.mediaDevices.getUserMedia({audio: true});
  const context = new AudioContext({sampleRate: SAMPLE_RATE});
  const source = context.createMediaStreamSource(stream);
  // ScriptProcessor: deprecated but everywhere, and enough for one 16 kHz channel.
  const processor = context.createScriptProcessor(4096, 1, 1);
  let pending = new Float32Array(0);
  let heard = 0;
  windows = [];
  processor.onaudioprocess = (event) => {
    const input = event.inputBuffer.getChannelData(0);
    const joined = new Float32Array(pending.length + input.length);
    joined.set(pending);
    joined.set(input, pending.length);
    pending = joined;
    while (pending.length >= windowSamples) {
      windows.push(...classify(pending.slice(0, windowSamples), heard / SAMPLE_RATE));
      heard += windowSamples;
      pending = pending.slice(windowSamples);
      render("microphone");
    }
  };
  source.connect(processor);
  processor.connect(context.destination);
  microphone = {stream, context};
  render("microphone");
  document.body.dataset.state = "listening";
  $("mic").textContent = "Stop microphone";
  $("mic").classList.add("recording");
  setStatus("Listening: a result every window.");
}

function stopMicrophone() {
  if (!microphone) return;
  microphone.stream.getTracks().forEach((t) => t.stop());
  microphone.context.close();
  microphone = null;
  document.body.dataset.state = "done";
  $("mic").textContent = "Start microphone";
  $("mic").classList.remove("recording");
  setStatus(`Microphone stopped after ${windows.length} windows.`);
}

// ---- results ---------------------------------------------------------------------------

function meanScores() {
  const mean = new Float32Array(classNames.length);
  for (const w of windows) w.scores.forEach((s, i) => { mean[i] += s / windows.length; });
  return mean;
}

function ranked(scores, k) {
  return [...scores.keys()].sort((a, b) => scores[b] - scores[a]).slice(0, k);
}

function render(title) {
  const mean = meanScores();
  $("overall-title").textContent = `Whole recording: ${title}`;
  $("overall").replaceChildren(...ranked(mean, 5).map((i) => {
    const li = document.createElement("li");
    li.dataset.index = i;
    li.dataset.score = mean[i];
    li.textContent = `${classNames[i]} ${mean[i].toFixed(3)}`;
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = `${Math.round(100 * mean[i])}px`;
    li.append(bar);
    return li;
  }));
  $("windows").tBodies[0].replaceChildren(...windows.map((w, n) => {
    const tr = document.createElement("tr");
    tr.dataset.window = n;
    tr.dataset.top3 = ranked(w.scores, 3).join(",");
    tr.innerHTML = `<td>${w.start.toFixed(2)}</td><td></td>`;
    tr.cells[1].textContent = ranked(w.scores, 3)
      .map((i) => `${classNames[i]} ${w.scores[i].toFixed(2)}`).join(", ");
    return tr;
  }));
  drawTimeline(ranked(mean, TIMELINE_ROWS));
  window.taggerResult = {
    classNames, overall: [...mean], windows: windows.map((w) => ({
      start: w.start, scores: [...w.scores]}))};
}

// Rows: the recording's leading classes; columns: windows; colour: score (0 white, 1 blue).
function drawTimeline(rows) {
  const canvas = $("timeline");
  const g = canvas.getContext("2d");
  const left = 170, top = 10, bottom = 24;
  const rowHeight = (canvas.height - top - bottom) / TIMELINE_ROWS;
  const cell = (canvas.width - left - 10) / Math.max(1, windows.length);
  g.clearRect(0, 0, canvas.width, canvas.height);
  g.font = "12px system-ui, sans-serif";
  g.textBaseline = "middle";
  rows.forEach((c, r) => {
    const y = top + r * rowHeight;
    g.fillStyle = "#1d2330";
    g.fillText(classNames[c].slice(0, 24), 4, y + rowHeight / 2);
    windows.forEach((w, n) => {
      const s = Math.max(0, Math.min(1, w.scores[c]));
      g.fillStyle = `rgb(${Math.round(255 - 194 * s)}, ${Math.round(255 - 148 * s)}, ` +
                    `${Math.round(255 - 39 * s)})`;
      g.fillRect(left + n * cell, y + 1, Math.max(1, cell - 1), rowHeight - 2);
    });
  });
  g.fillStyle = "#4a5468";
  const step = Math.max(1, Math.ceil(windows.length / 10));
  for (let n = 0; n < windows.length; n += step) {
    g.fillText(`${windows[n].start.toFixed(1)} s`, left + n * cell, canvas.height - 10);
  }
}

// ---- wiring ----------------------------------------------------------------------------

$("model-file").addEventListener("change", async (e) => {
  const file = e.target.files[0];
  if (file) await loadModel(new Uint8Array(await file.arrayBuffer()), file.name);
});
$("audio-file").addEventListener("change", (e) => {
  if (e.target.files[0]) tagFile(e.target.files[0]);
});
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  if (e.dataTransfer.files[0]) tagFile(e.dataTransfer.files[0]);
});
$("mic").addEventListener("click", () => {
  if (microphone) { stopMicrophone(); return; }
  startMicrophone().catch((e) => setStatus(`Microphone: ${e.message || e}`, true));
});

const modelUrl = new URLSearchParams(location.search).get("model");
if (modelUrl) {
  fetch(modelUrl)
    .then((r) => {
      if (!r.ok) throw new Error(`${modelUrl}: HTTP ${r.status}`);
      return r.arrayBuffer();
    })
    .then((b) => loadModel(new Uint8Array(b), modelUrl.split("/").pop()))
    .catch((e) => { document.body.dataset.model = "failed"; setStatus(String(e), true); });
}
