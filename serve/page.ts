/**
 * The page `GET /` serves: plain HTML, CSS and a script (`GET /page.js`), no framework and nothing
 * fetched from elsewhere. A person types a text (and, for a pair model, a second text), presses
 * Classify, and sees the top label and every label's probability as a bar; the model card below
 * comes from `GET /model`. The script writes only `textContent`, never HTML, so no text can inject
 * markup. `tests/page_test.ts` drives it in headless Chromium.
 * @module
 */

/** The HTML of `GET /`. */
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>bert-webgpu classifier</title>
<style>
  :root { color-scheme: light dark; --accent: #3b6fd8; --muted: #8a8f98; }
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 44rem; margin: 2rem auto; padding: 0 1rem; }
  h1 { font-size: 1.4rem; margin-bottom: .25rem; }
  .sub { color: var(--muted); margin-top: 0; }
  label { display: block; font-weight: 600; margin-top: 1rem; }
  textarea, input[type=text] { width: 100%; box-sizing: border-box; font: inherit; padding: .5rem;
    border: 1px solid #9aa3ad; border-radius: 6px; }
  textarea { min-height: 5rem; resize: vertical; }
  button { margin-top: 1rem; font: inherit; padding: .5rem 1.25rem; border: 0; border-radius: 6px;
    background: var(--accent); color: white; cursor: pointer; }
  button:disabled { opacity: .6; cursor: wait; }
  #result { margin-top: 1.5rem; min-height: 2rem; }
  #label { font-size: 1.2rem; font-weight: 700; margin: 0 0 .5rem; }
  .row { display: grid; grid-template-columns: 9rem 1fr 4rem; gap: .5rem; align-items: center; margin: .25rem 0; }
  .track { background: rgba(127,127,127,.2); border-radius: 4px; height: 1.1rem; overflow: hidden; }
  .fill { background: var(--accent); height: 100%; }
  .num { text-align: right; font-variant-numeric: tabular-nums; }
  .error { color: #c0392b; }
  details { margin-top: 2rem; }
  dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; font-size: .9rem; }
  dt { color: var(--muted); } dd { margin: 0; word-break: break-word; }
</style>
</head>
<body>
<h1>Text classifier</h1>
<p class="sub" id="subtitle">A BERT model served by bert-webgpu.</p>
<form id="form">
  <label for="text">Text</label>
  <textarea id="text" required placeholder="Type a sentence, e.g. The dog runs."></textarea>
  <label for="pair">Second text (only for sentence-pair models)</label>
  <input id="pair" type="text" placeholder="optional">
  <button id="go" type="submit">Classify</button>
</form>
<section id="result" aria-live="polite"></section>
<details open>
  <summary>Model card (GET /model)</summary>
  <dl id="card"></dl>
</details>
<script src="/page.js"></script>
</body>
</html>
`;

/** The script of the page, `GET /page.js`. */
export const PAGE_JS = `"use strict";
const $ = (id) => document.getElementById(id);
const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};

async function loadCard() {
  const card = $("card");
  try {
    const info = await (await fetch("/model")).json();
    const shown = {
      labels: (info.labels || []).join(", "), problem: info.problemType, "max length": info.maxLength,
      backend: info.backend || "wasm", variant: info.variant, quantization: info.quantization,
      file: info.file, size: info.bytes >= 1e6 ? (info.bytes / 1e6).toFixed(1) + " MB" : info.bytes ? (info.bytes / 1e3).toFixed(1) + " kB" : undefined,
      threads: info.threads, vocabulary: info.vocabSize,
      batching: info.batching ? info.batching.windowMs + " ms window, up to " + info.batching.maxBatch : undefined,
      "max texts": info.limits && info.limits.maxTexts,
    };
    for (const [k, v] of Object.entries(shown)) {
      if (v === undefined || v === null || v === "") continue;
      card.append(el("dt", "", k), el("dd", "", String(v)));
    }
    $("subtitle").textContent = "Labels: " + (info.labels || []).join(", ") + " (" + info.variant + ")";
  } catch (e) {
    card.append(el("dd", "error", "Cannot read the model card: " + e));
  }
}

function show(result) {
  const out = $("result");
  out.replaceChildren();
  if (result.value !== undefined) {
    out.append(el("p", "", "Value: " + result.value.toFixed(4)));
    out.dataset.label = String(result.value);
    return;
  }
  out.append(el("p", "", result.label + " (" + (100 * result.score).toFixed(1) + "%)"));
  out.firstChild.id = "label";
  out.dataset.label = result.label;
  const entries = Object.entries(result.probabilities).sort((a, b) => b[1] - a[1]);
  for (const [label, p] of entries) {
    const row = el("div", "row");
    row.dataset.label = label;
    row.dataset.score = String(p);
    const track = el("div", "track");
    const fill = el("div", "fill");
    fill.style.width = (100 * p).toFixed(1) + "%";
    track.append(fill);
    row.append(el("span", "", label), track, el("span", "num", (100 * p).toFixed(1) + "%"));
    out.append(row);
  }
  if (result.truncated) out.append(el("p", "sub", "The text was longer than the model reads; its end was cut."));
}

async function classify(event) {
  event.preventDefault();
  const button = $("go");
  button.disabled = true;
  const body = { text: $("text").value };
  if ($("pair").value !== "") body.text_pair = $("pair").value;
  try {
    const response = await fetch("/classify", {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
    });
    const json = await response.json();
    if (!response.ok) throw new Error(json.error ? json.error.message : "HTTP " + response.status);
    show(json.results[0]);
  } catch (e) {
    $("result").replaceChildren(el("p", "error", String(e.message || e)));
    $("result").dataset.label = "";
  } finally {
    button.disabled = false;
    $("result").dataset.done = String(Number($("result").dataset.done || 0) + 1);
  }
}

$("form").addEventListener("submit", classify);
loadCard();
`;
