// The page: choose images, send each to /api/upscale or /api/denoise, show progress and results.
"use strict";

const $ = (id) => document.getElementById(id);
const MAX_IN_FLIGHT = 3;  // the server runs one at a time; a few more show their queue place
const POLL_MS = 400;
const BROWSER_CANNOT_SHOW = /\.tiff?$/i;

let models = [];
let chosen = [];
let ranChosen = false;  // images chosen after a run replace those it ran on
const waiting = [];
let inFlight = 0;
const finished = [];  // {name, blob} of every result, for the ZIP

function showPageError(message) {
  $("page-error").textContent = message;
  $("page-error").hidden = !message;
}

// ---- choosing images ----

function choose(files) {
  const images = [...files].filter((f) => f.type.startsWith("image/") || BROWSER_CANNOT_SHOW.test(f.name));
  if (files.length && !images.length) return showPageError("those are not images");
  showPageError("");
  if (ranChosen) chosen = [];
  ranChosen = false;
  chosen.push(...images);
  renderChosen();
}

function renderChosen() {
  $("chosen").replaceChildren(...chosen.map((f) => {
    const item = document.createElement("li");
    item.textContent = `${f.name} (${(f.size / 1e6).toFixed(2)} MB)`;
    return item;
  }));
  $("chosen-bar").hidden = !chosen.length;
  $("upscale").disabled = $("denoise").disabled = !chosen.length;
}

$("files").addEventListener("change", (e) => { choose(e.target.files); e.target.value = ""; });
$("clear").addEventListener("click", () => { chosen = []; renderChosen(); });
for (const type of ["dragenter", "dragover"]) {
  document.addEventListener(type, (e) => { e.preventDefault(); $("drop").classList.add("over"); });
}
document.addEventListener("dragleave", (e) => {
  if (!e.relatedTarget) $("drop").classList.remove("over");
});
document.addEventListener("drop", (e) => {
  e.preventDefault();
  $("drop").classList.remove("over");
  choose(e.dataTransfer.files);
});
document.addEventListener("paste", (e) => {
  const files = [...e.clipboardData.files].map((f, i) =>
    f.name && f.name !== "image.png" ? f : new File([f], `pasted-${Date.now()}-${i}.png`, {type: f.type}));
  if (files.length) choose(files);
});

// ---- options ----

function fillModels(select, purpose, candidates) {
  select.replaceChildren(...candidates.map((m) => {
    const option = new Option(m.label || `${m.name}${m.default ? " (default)" : ""}`, m.name);
    option.selected = !!m.default;
    option.dataset.purpose = m.purpose;
    return option;
  }));
  const show = () => { purpose.textContent = select.selectedOptions[0]?.dataset.purpose || ""; };
  select.onchange = show;
  show();
}

function updateUpscaleOptions() {
  const size = $("size").value;
  for (const id of ["factor", "width", "height"]) $(id).hidden = size !== id;
  const sr = models.filter((m) => m.task === "sr");
  const fixed = Number(size);
  // A fixed scale lists that scale's models; any other size lets the size pick the default.
  fillModels($("sr-model"), $("sr-purpose"), fixed
    ? sr.filter((m) => m.scale === fixed)
    : [{name: "", label: "photo model for the size (default)", default: true,
        purpose: "the smallest photo model that reaches the size, then a Lanczos downscale"},
       ...sr.map((m) => ({...m, default: false, label: `${m.name} (up to x${m.scale})`}))]);
}

$("size").addEventListener("change", updateUpscaleOptions);
$("level").addEventListener("change", () => { $("sigma").hidden = $("level").value !== "given"; });

async function loadModels() {
  try {
    const answer = await fetch("/api/models");
    models = await answer.json();
  } catch {
    showPageError("the server did not answer: is srnl serve still running?");
    return;
  }
  updateUpscaleOptions();
  fillModels($("dn-model"), $("dn-purpose"), models.filter((m) => m.task === "denoise"));
}

// The form fields of a request for `file`, from the options as they are now.
function requestFields(task, file) {
  const fields = new FormData();
  fields.append("image", file, file.name);
  const ext = $("ext").value;
  // A result the browser cannot show would leave the page with nothing to look at.
  fields.append("ext", ext === "same" && BROWSER_CANNOT_SHOW.test(file.name) ? "png" : ext);
  if ($("ensemble").checked) fields.append("self_ensemble", "true");
  let what, model;
  if (task === "upscale") {
    const size = $("size").value;
    const value = Number(size) || $(size).value;
    fields.append(Number(size) || size === "factor" ? "scale" : size, value);
    what = Number(size) ? `x${size}` : size === "factor" ? `x${value}` : `${size} ${value}`;
    model = $("sr-model").value;
    if (model) fields.append("model", model);
  } else {
    const sigma = $("level").value === "auto" ? "auto" : $("sigma").value;
    fields.append("sigma", sigma);
    model = $("dn-model").value;
    fields.append("model", model);
    what = sigma === "auto" ? "noise level auto" : `noise sigma ${sigma}`;
  }
  return {fields, label: `${what}${model ? ` · ${model}` : ""}`};
}

// ---- jobs ----

function newJobId() {
  return (crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`).replace(/[^\w-]/g, "");
}

function start(task) {
  const size = $("size").value;
  const missing = task === "upscale" && !Number(size) && !$(size).value ? size
    : task === "denoise" && $("level").value === "given" && $("sigma").value === "" ? "sigma" : null;
  if (missing) return showPageError(`enter the ${missing} first`);
  showPageError("");
  $("results").hidden = false;
  for (const file of chosen) {
    const {fields, label} = requestFields(task, file);
    const job = newJobId();
    fields.append("job", job);
    const card = makeCard(file, label);
    waiting.push({task, fields, job, card, file});
  }
  ranChosen = true;
  pump();
}

$("upscale").addEventListener("click", () => start("upscale"));
$("denoise").addEventListener("click", () => start("denoise"));

function pump() {
  while (inFlight < MAX_IN_FLIGHT && waiting.length) {
    inFlight++;
    send(waiting.shift()).finally(() => { inFlight--; pump(); });
  }
}

function makeCard(file, label) {
  const card = $("card").content.firstElementChild.cloneNode(true);
  card.querySelector(".name").textContent = file.name;
  card.querySelector(".what").textContent = label;
  card.querySelector(".status").textContent = "waiting to upload";
  card.querySelector("progress").removeAttribute("value");
  $("cards").prepend(card);
  return card;
}

function setStatus(card, text, done, total) {
  card.querySelector(".status").textContent = text;
  const bar = card.querySelector("progress");
  if (total) { bar.max = total; bar.value = done; } else bar.removeAttribute("value");
}

function post(url, fields, onUpload) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.responseType = "blob";
    xhr.upload.onprogress = (e) => e.lengthComputable && onUpload(e.loaded, e.total);
    xhr.onload = () => resolve(xhr);
    xhr.onerror = () => reject(new Error("the server did not answer: is srnl serve still running?"));
    xhr.send(fields);
  });
}

async function pollProgress(job, card, running) {
  while (running.value) {
    await new Promise((r) => setTimeout(r, POLL_MS));
    if (!running.value) return;
    try {
      const answer = await fetch(`/api/progress/${job}`);
      if (!answer.ok || !running.value) continue;
      const state = await answer.json();
      if (state.state === "queued") {
        setStatus(card, state.position ? `queued: ${state.position} ahead` : "starting");
      } else if (state.total > 1) {
        setStatus(card, `restoring: tile ${state.done} of ${state.total}`, state.done, state.total);
      } else {
        setStatus(card, "restoring");
      }
    } catch { /* the main request reports a dead server */ }
  }
}

async function send({task, fields, job, card, file}) {
  const running = {value: true};
  setStatus(card, "uploading", 0, 1);
  pollProgress(job, card, running);
  const began = performance.now();
  try {
    const xhr = await post(`/api/${task}`, fields,
      (loaded, total) => loaded < total && setStatus(card, "uploading", loaded, total));
    running.value = false;
    if (xhr.status !== 200) {
      let message = `the server answered ${xhr.status}`;
      try { message = JSON.parse(await xhr.response.text()).error || message; } catch { /* not JSON */ }
      return fail(card, message);
    }
    await showResult(card, file, xhr, (performance.now() - began) / 1000);
  } catch (e) {
    running.value = false;
    fail(card, e.message);
  }
}

function fail(card, message) {
  setStatus(card, "failed", 0, 1);
  card.classList.add("failed");
  const line = card.querySelector(".error");
  line.textContent = message.split("\n")[0];
  line.hidden = false;
}

function downloadName(xhr, fallback) {
  const match = /filename="([^"]+)"/.exec(xhr.getResponseHeader("Content-Disposition") || "");
  return match ? match[1] : fallback;
}

function uniqueName(name) {
  const taken = new Set(finished.map((f) => f.name));
  if (!taken.has(name)) return name;
  const dot = name.lastIndexOf(".");
  for (let n = 2; ; n++) {
    const candidate = `${name.slice(0, dot)} (${n})${name.slice(dot)}`;
    if (!taken.has(candidate)) return candidate;
  }
}

async function showResult(card, file, xhr, wall) {
  const blob = xhr.response;
  const name = uniqueName(downloadName(xhr, "result.png"));
  const url = URL.createObjectURL(blob);
  const after = card.querySelector(".after");
  const before = card.querySelector(".before");
  await new Promise((resolve) => {
    after.onload = resolve;
    after.onerror = resolve;
    after.src = url;
  });
  // A background, not an <img>: the result is the card's only image.
  const input = URL.createObjectURL(file);
  const probe = new Image();
  probe.onerror = () => card.classList.add("no-before");  // a format the browser cannot show
  probe.src = input;
  before.style.backgroundImage = `url("${input}")`;

  const header = (h) => xhr.getResponseHeader(h) || "";
  const note = header("X-Srnl-Note");
  card.querySelector(".info").textContent =
    `${header("X-Srnl-Input-Size")} → ${header("X-Srnl-Output-Size")} · ${header("X-Srnl-Model")}` +
    `${note ? ` · ${note}` : ""} · ${Number(header("X-Srnl-Seconds")).toFixed(2)} s restoring, ` +
    `${wall.toFixed(1)} s in all · ${(blob.size / 1e6).toFixed(2)} MB`;
  const link = card.querySelector(".download");
  link.href = url;
  link.download = name;
  link.textContent = `Download ${name}`;
  setStatus(card, "done", 1, 1);
  card.classList.add("done");
  card.querySelector(".result").hidden = false;
  wireViewer(card);
  finished.push({name, blob});
  $("zip").disabled = false;
  $("zip").textContent = `Download all (ZIP, ${finished.length})`;
}

// ---- the before/after viewer ----

function wireViewer(card) {
  const viewer = card.querySelector(".viewer");
  const stage = card.querySelector(".stage");
  const slider = card.querySelector(".slider");
  const place = (percent) => {
    slider.value = percent;
    stage.style.setProperty("--split", `${percent}%`);
  };
  slider.addEventListener("input", () => place(slider.value));
  let dragging = false;
  const follow = (e) => {
    const box = stage.getBoundingClientRect();
    place(Math.min(100, Math.max(0, ((e.clientX - box.left) / box.width) * 100)));
  };
  stage.addEventListener("pointerdown", (e) => { dragging = true; stage.setPointerCapture(e.pointerId); follow(e); });
  stage.addEventListener("pointermove", (e) => dragging && follow(e));
  stage.addEventListener("pointerup", () => { dragging = false; });
  place(50);

  const zoom = card.querySelector(".zoom");
  zoom.addEventListener("click", () => {
    const fit = viewer.classList.toggle("fit");
    zoom.textContent = fit ? "Zoom to 100%" : "Fit to the page";
    // One image pixel per screen pixel, on high-density screens too.
    const after = card.querySelector(".after");
    after.style.width = fit ? "" : `${after.naturalWidth / devicePixelRatio}px`;
    if (!fit) {  // open 100% on the middle of the image
      viewer.scrollLeft = (viewer.scrollWidth - viewer.clientWidth) / 2;
      viewer.scrollTop = (viewer.scrollHeight - viewer.clientHeight) / 2;
    }
  });
}

$("zip").addEventListener("click", async () => {
  const blob = await makeZip(finished);
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = "srnl-results.zip";
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 60000);
});

loadModels();
