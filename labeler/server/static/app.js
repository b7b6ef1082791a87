// The verification page: each file is sent to POST /v1/verify on its own, so each card shows its own
// progress. Everything the server returns is put on the page with textContent only (never as HTML):
// file names and label fields come from strangers.
"use strict";

const LAYER_TITLES = {
  metadata: "Metadata label (GB 45438 Appendix E)",
  watermark: "Invisible watermark",
  visible: "Visible label / audio cue",
  c2pa: "C2PA manifest",
};
const FIELD_NAMES = ["Label", "ContentProducer", "ProduceID", "ReservedCode1", "ContentPropagator",
  "PropagateID", "ReservedCode2"];
const LABEL_MEANING = { "1": "AI-generated", "2": "possibly AI-generated", "3": "suspected AI-generated" };

// Below this height ratio the visible label is clearly under GB 45438's 5 %, whatever the measurement's error.
const HEIGHT_CLEARLY_LOW = 0.045;
// Uploads in flight at once until /v1/health says the server's --max-concurrent; a 503 is retried after
// its Retry-After this many times, so picking more files than the server admits still gives every result.
const DEFAULT_IN_FLIGHT = 2;
const MAX_BUSY_RETRIES = 6;

let cardCount = 0;
let maxInFlight = DEFAULT_IN_FLIGHT;
let inFlight = 0;
const waiting = []; // {file, card, tries}, oldest first
let renderingCard = ""; // the card whose sections are being built: their heading ids start with it

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

function say(text) {
  document.getElementById("status").textContent = text;
}

function yesNo(value) {
  if (value === true) return "yes";
  if (value === false) return "no";
  return "—";
}

function shown(value) {
  if (value === null || value === undefined) return "—";
  if (value === "") return "(empty)";
  return String(value);
}

function fieldTable(rows) {
  const body = el("tbody");
  for (const [name, value] of rows) {
    const cell = el("td");
    if (value instanceof Node) cell.append(value);
    else cell.textContent = shown(value);
    body.append(el("tr", {}, el("th", { scope: "row", text: name }), cell));
  }
  return el("table", { class: "fields" }, body);
}

function list(items, cls) {
  if (!items || items.length === 0) return null;
  const node = el("ul", { class: cls });
  for (const item of items) node.append(el("li", { text: typeof item === "string" ? item : JSON.stringify(item) }));
  return node;
}

// "p = 3e-12" in words: how likely an unmarked file would show a match this strong.
function pValueWords(p, present) {
  if (p === null || p === undefined) return "not measured";
  if (p <= 0) return "p = 0: no unmarked file would match this strongly";
  // Rounded, not floored: p = 1.2e-90 is about 1 in 10^90 (floor said 10^89, eight times too likely).
  const exponent = Math.round(-Math.log10(p));
  const odds = p < 0.01 ? `about 1 in 10^${exponent}` : `about ${Math.round(p * 100)} %`;
  const verdict = present ? "a real watermark" : "below the detection threshold (1 in a million)";
  return `p = ${p.toExponential(1)}: the chance that an unmarked file matches this strongly is ${odds}; ${verdict}`;
}

function section(name, ...content) {
  const id = `${renderingCard}-${name}`;
  return el("section", { class: `layer layer-${name}`, "aria-labelledby": id },
    el("h4", { id, text: LAYER_TITLES[name] || name }), ...content);
}

function metadataSection(md) {
  if (!md.present) return section("metadata", el("p", { class: "state", text: "No AIGC metadata label found." }));
  const fields = md.fields || {};
  const rows = FIELD_NAMES.map((name) => [name, fields[name]]);
  const label = fields.Label;
  if (LABEL_MEANING[label]) rows[0][1] = `${label} (${LABEL_MEANING[label]})`;
  rows.push(["Where", `${shown(md.carrier)} — ${shown(md.location)}`]);
  rows.push(["Complies with Appendix E", yesNo(md.valid)]);
  return section("metadata", fieldTable(rows),
    md.problems.length ? el("p", { text: "Problems:" }) : null, list(md.problems, "problems"),
    list(md.warnings, "warnings"));
}

function watermarkSection(wm) {
  const rows = [
    ["Found", yesNo(wm.present)],
    ["Payload", wm.payload],
    ["Likelihood", pValueWords(wm.p_value, wm.present)],
    ["Matches the metadata ProduceID", yesNo(wm.matches_metadata)],
    ["Method", wm.method],
    ["Key ID", wm.key_id],
  ];
  return section("watermark", fieldTable(rows), wm.note ? el("p", { class: "note", text: wm.note }) : null);
}

function drawBox(width, height, canvas, box) {
  canvas.width = width;
  canvas.height = height;
  const sx = width / box.width;
  const sy = height / box.height;
  const ctx = canvas.getContext("2d");
  ctx.lineWidth = Math.max(3, Math.round(width / 200));
  ctx.strokeStyle = getComputedStyle(document.documentElement).getPropertyValue("--box").trim() || "#e11d48";
  ctx.strokeRect(box.x * sx, box.y * sy, box.w * sx, box.h * sy);
  canvas.dataset.drawn = "true";
}

function imagePreview(file, box, vis) {
  const img = el("img", { alt: `Preview of ${file.name}` });
  const canvas = el("canvas", { "aria-hidden": "true", "data-box": `${box.x},${box.y},${box.w},${box.h}` });
  const caption = el("p", { class: "note",
    text: `Red box: the visible label "${vis.text}" found at ${vis.position} (${box.w}×${box.h} px at ${box.x}, ${box.y}).` });
  img.addEventListener("load", () => drawBox(img.naturalWidth, img.naturalHeight, canvas, box));
  // TIFF, HEIC...: formats the server reads that a browser may not show. Say so, as for a video, rather
  // than a broken image under a caption about a red box that is not drawn.
  img.addEventListener("error", () => {
    caption.textContent = `This browser cannot show this image format; the label was found at ${vis.position} (${box.w}×${box.h} px at ${box.x}, ${box.y}).`;
    img.parentElement.hidden = true;
  });
  img.src = URL.createObjectURL(file);
  return el("figure", { class: "preview-figure" }, el("div", { class: "preview" }, img, canvas), caption);
}

// A video's first frame (where the mark starts), still, with the box over it. A browser that cannot
// decode the video says so instead.
function videoPreview(file, box, vis) {
  const video = el("video", { muted: "", playsinline: "", preload: "auto", "aria-label": `First frame of ${file.name}` });
  const canvas = el("canvas", { "aria-hidden": "true", "data-box": `${box.x},${box.y},${box.w},${box.h}` });
  const caption = el("p", { class: "note",
    text: `Red box: the visible label "${vis.text}" found at ${vis.position} in the first frame (${box.w}×${box.h} px at ${box.x}, ${box.y}).` });
  video.muted = true;
  video.addEventListener("loadeddata", () => drawBox(video.videoWidth, video.videoHeight, canvas, box));
  video.addEventListener("error", () => {
    caption.textContent = `This browser cannot show the video; the label was found at ${vis.position} (${box.w}×${box.h} px at ${box.x}, ${box.y}).`;
    video.parentElement.hidden = true;
  });
  video.src = URL.createObjectURL(file);
  return el("figure", { class: "preview-figure" }, el("div", { class: "preview" }, video, canvas), caption);
}

function audioFound(found) {
  if (!found || found.length === 0) return null;
  return list(found.map((f) => {
    const what = f.kind === "audio-voice" ? `spoken prompt (${f.language})` : "rhythm cue (Morse “AI”)";
    return `${what} at ${Number(f.seconds).toFixed(2)} s (${f.position}), score ${f.score}`;
  }), "found");
}

function visibleSection(vis, report, file, box) {
  if (!vis.present) {
    return section("visible", el("p", { class: "state",
      text: `No visible label found (best score ${shown(vis.score)}).` }),
      vis.note ? el("p", { class: "note", text: vis.note }) : null);
  }
  const rows = [["Kind", vis.kind], ["Wording", vis.text], ["Position", vis.position]];
  if (vis.height_ratio !== null && vis.height_ratio !== undefined) {
    // verify's measurement reads a few percent low (docs/report.md, height_ratio): say "about", and only
    // point at GB 45438's 5 % when the value is clearly under it, not for a label drawn at 5 %.
    const low = vis.height_ratio < HEIGHT_CLEARLY_LOW ? " (GB 45438 asks at least 5 %)" : "";
    rows.push(["Height", `about ${(vis.height_ratio * 100).toFixed(1)} % of the shorter side${low}`]);
  }
  if (report.medium === "audio") rows.push(["Time", `${Number(vis.seconds).toFixed(2)} s`]);
  if (report.medium === "video" && vis.seconds !== null) rows.push(["Seen until", `${vis.seconds} s (sampled every 0.5 s)`]);
  if (vis.language) rows.push(["Language", vis.language]);
  rows.push(["Score", vis.score]);
  let extra = null;
  if (report.medium === "image" && box) extra = imagePreview(file, box, vis);
  else if (report.medium === "image") extra = el("p", { class: "note", text: "The preview cannot show this image format." });
  else if (report.medium === "video" && box) extra = videoPreview(file, box, vis);
  else if (report.medium === "video") extra = el("p", { class: "note", text: "Video: the mark was found in the sampled frames; no preview is drawn." });
  return section("visible", fieldTable(rows), extra, audioFound(vis.found));
}

function c2paSection(cp) {
  if (!cp.present) return section("c2pa", el("p", { class: "state", text: "No C2PA manifest." }));
  const ingredients = (cp.ingredients || []).map((i) => (typeof i === "string" ? i :
    [i.title, i.relationship, i.format].filter(Boolean).join(" — ") || JSON.stringify(i)));
  const rows = [
    ["State", cp.state],
    ["Declares AI generation", yesNo(cp.ai_generated)],
    ["Signer", cp.signer],
    ["Issuer", cp.issuer],
    ["Validation codes", cp.codes && cp.codes.length ? cp.codes.join(", ") : "none"],
    ["Ingredients", ingredients.length ? ingredients.join("; ") : "none"],
  ];
  if (cp.remote) rows.push(["Remote manifest", "yes (not fetched)"]);
  if (cp.error) rows.push(["Error", cp.error]);
  return section("c2pa", fieldTable(rows));
}

function verdictBadge(report) {
  const node = el("span");
  if (report.verdict === null) {
    node.append(el("span", { class: "verdict verdict-error", text: "unreadable" }));
  } else {
    node.append(el("span", { class: `verdict verdict-${report.verdict}`, text: report.verdict }));
    // the space is text, not only CSS, so a screen reader does not run "confirmed(high" together
    if (report.confidence) node.append(" ", el("span", { class: "confidence", text: `(${report.confidence} confidence)` }));
  }
  return node;
}

function renderReport(card, report, box, file) {
  renderingCard = card.id;
  const body = card.querySelector(".card-body");
  card.querySelector(".card-verdict").replaceChildren(verdictBadge(report));
  card.dataset.verdict = report.verdict === null ? "unreadable" : report.verdict;
  const what = [report.format, report.medium, report.size !== null ? `${report.size} bytes` : null]
    .filter(Boolean).join(", ");
  body.replaceChildren(...[el("p", { class: "note", text: what }), list(report.reasons, "reasons"),
    list(report.warnings, "warnings"), list(report.errors, "errors")].filter(Boolean));
  const layers = report.layers || {};
  if (layers.metadata) body.append(metadataSection(layers.metadata));
  if (layers.watermark) body.append(watermarkSection(layers.watermark));
  if (layers.visible) body.append(visibleSection(layers.visible, report, file, box));
  if (layers.c2pa) body.append(c2paSection(layers.c2pa));
  say(`${file.name}: ${report.verdict === null ? "unreadable" : report.verdict}`);
}

function renderError(card, status, problem, file) {
  card.dataset.verdict = "error";
  card.querySelector(".card-verdict").replaceChildren(el("span", { class: "verdict verdict-error", text: "error" }));
  const detail = problem && problem.detail ? problem.detail : `the server answered ${status}`;
  card.querySelector(".card-body").replaceChildren(
    el("p", { class: "errors", role: "alert", text: `${problem && problem.error ? problem.error : "error"}: ${detail}` }));
  say(`${file.name}: error, ${detail}`);
}

function setProgress(card, label, percent) {
  const row = card.querySelector(".progress-row");
  const bar = row.querySelector("progress");
  row.hidden = false;
  row.querySelector(".progress-label").textContent = label;
  if (percent === null) bar.removeAttribute("value"); // indeterminate while the server checks
  else bar.value = percent;
}

function newCard(file) {
  cardCount += 1;
  const card = document.getElementById("card-template").content.firstElementChild.cloneNode(true);
  card.id = `card-${cardCount}`;
  card.dataset.name = file.name;
  card.querySelector(".card-title").textContent = file.name;
  const bar = card.querySelector("progress");
  bar.id = `progress-${cardCount}`;
  card.querySelector(".progress-label").setAttribute("for", bar.id);
  card.setAttribute("aria-busy", "true");
  document.getElementById("cards").prepend(card);
  return card;
}

// Send queued uploads while fewer than maxInFlight are in flight.
function pump() {
  while (inFlight < maxInFlight && waiting.length > 0) {
    inFlight += 1;
    send(waiting.shift());
  }
}

function finished() {
  inFlight -= 1;
  pump();
}

// Seconds a 503 asks to wait (Retry-After as seconds), kept within 1..30.
function retryDelay(xhr) {
  const seconds = Number.parseInt(xhr.getResponseHeader("Retry-After") || "", 10);
  return Number.isFinite(seconds) ? Math.min(30, Math.max(1, seconds)) : 5;
}

function check(file) {
  const card = newCard(file);
  setProgress(card, "Waiting to upload…", 0);
  waiting.push({ file, card, tries: 0 });
  pump();
}

function send(job) {
  const { file, card } = job;
  setProgress(card, "Uploading 0 %", 0);
  const form = new FormData();
  form.append("file", file, file.name);
  const xhr = new XMLHttpRequest();
  xhr.open("POST", "/v1/verify?boxes=1");
  xhr.responseType = "text";
  xhr.upload.addEventListener("progress", (event) => {
    if (event.lengthComputable) {
      const percent = Math.round((100 * event.loaded) / event.total);
      setProgress(card, `Uploading ${percent} %`, percent);
    }
  });
  xhr.upload.addEventListener("load", () => setProgress(card, "Checking…", null));
  xhr.addEventListener("load", () => {
    if (xhr.status === 503 && job.tries < MAX_BUSY_RETRIES) {
      // The server is full (other people's uploads count too): wait as it asks, then queue again first.
      job.tries += 1;
      const delay = retryDelay(xhr);
      setProgress(card, `Server busy; retrying in ${delay} s`, null);
      setTimeout(() => { waiting.unshift(job); pump(); }, delay * 1000);
      inFlight -= 1;
      return;
    }
    finished();
    card.querySelector(".progress-row").hidden = true;
    card.removeAttribute("aria-busy");
    let data = null;
    try { data = JSON.parse(xhr.responseText); } catch (e) { data = null; }
    if (xhr.status === 200 && data && !Array.isArray(data)) {
      let boxes = null;
      try { boxes = JSON.parse(xhr.getResponseHeader("X-AIGC-Visible-Boxes") || "null"); } catch (e) { boxes = null; }
      renderReport(card, data, boxes ? boxes[0] : null, file);
    } else {
      renderError(card, xhr.status, data, file);
    }
  });
  xhr.addEventListener("error", () => {
    finished();
    card.querySelector(".progress-row").hidden = true;
    card.removeAttribute("aria-busy");
    renderError(card, 0, { error: "network error", detail: "the server could not be reached" }, file);
  });
  xhr.send(form);
}

function checkAll(files) {
  for (const file of files) check(file);
}

async function loadHealth() {
  const info = document.getElementById("server-info");
  try {
    const response = await fetch("/v1/health", { cache: "no-store" });
    const health = await response.json();
    const labeling = health.labeling;
    if (labeling.enabled) {
      info.textContent = `Labeling API (POST /v1/label): enabled — layers ${labeling.layers.join(", ")}` +
        (labeling.token_required ? "; a bearer token is required." : ".");
    } else {
      info.textContent = `Labeling API: disabled on this server — ${labeling.reason}. Verification works.`;
      info.classList.add("disabled");
    }
    info.dataset.labeling = labeling.enabled ? "enabled" : "disabled";
    const admitted = Number(health.limits.max_concurrent);
    if (Number.isInteger(admitted) && admitted >= 1) {
      maxInFlight = admitted;
      pump();
    }
    const mb = Math.floor(health.limits.max_upload_bytes / (1 << 20));
    document.getElementById("limits-hint").textContent =
      `JPEG, PNG, WebP, TIFF, GIF, AVIF, HEIC, WAV, MP3, FLAC, Ogg, M4A, MP4, MOV, MKV, WebM, FLV, AVI; up to ${mb} MB each.`;
  } catch (e) {
    info.textContent = "The server did not say what it offers; verification may still work.";
  }
}

function setUp() {
  const input = document.getElementById("file-input");
  input.addEventListener("change", () => {
    checkAll(Array.from(input.files));
    input.value = ""; // the same file may be chosen again
  });
  const drop = document.getElementById("drop");
  for (const kind of ["dragenter", "dragover"]) {
    drop.addEventListener(kind, (event) => { event.preventDefault(); drop.classList.add("over"); });
  }
  for (const kind of ["dragleave", "drop"]) {
    drop.addEventListener(kind, () => drop.classList.remove("over"));
  }
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    checkAll(Array.from(event.dataTransfer.files));
  });
  loadHealth();
}

document.addEventListener("DOMContentLoaded", setUp);
