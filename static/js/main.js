/* Handwriting recognition page: wires the drawing surface, the upload, the options and the result
 * area together, and owns what the page remembers between events (``state``). ES modules, no
 * build step; the browser only collects ink and shows answers, every bit of image preparation
 * happens on the server. Requests go through api.js. */

import { errorMessage, readDrawing, readUpload } from "./api.js";
import { shrinkTo, Surface } from "./canvas.js";
import { render as renderHistory } from "./history.js";
import { clearResult, focusResult, setStatus, showAnswer, showProgress } from "./results.js";
import { initTeach, loadPersonal, profileField } from "./teach.js";
import { $ } from "./util.js";

const LIVE_DELAY_MS = 150; // live reading waits this long after the last stroke ends
const BUSY_DELAY_MS = 400; // a quick canvas answer shows no spinner, so it does not flicker
const RETRIES = 3; // a busy server (503) or a rate limit (429) with a short Retry-After: ask again
const RETRY_MAX_S = 10;
const HINTS = {
  glyph: "Write one character, large and centred. Several side by side are read as a short sequence.",
  line: "Write a line of text, or several lines one under the other; the box grows a line when you reach the bottom.",
};

const layout = $("layout");
const maxUploadBytes = Number(layout.dataset.maxUploadBytes) || Infinity;
const maxUploadMb = layout.dataset.maxUploadMb || "";
const penWidth = $("pen-width");
const penWidthValue = $("pen-width-value");
const undoButton = $("undo");
const asPage = $("as-page");
const pageEngine = $("page-engine");
const alphabetSelect = $("alphabet-select");
const correctSpelling = $("correct-spelling");

const surface = new Surface($("canvas"), { onStroke: scheduleLive, onChange: updateButtons });

/** Everything the page remembers between events (the drawing itself lives in ``surface``). */
const state = {
  lastSource: null, // "canvas" or {file}: what a change of task or option reads again
  pictureUrl: null, // object URL of the last upload, shown under its answer's boxes
  liveTimer: 0, // the live reading waiting for the drawing to pause
  seq: 0, // id of the latest reading request; older answers are dropped
  inflight: null, // that request ({abort}) while it is on its way
  busyTimer: 0, // shows the spinner when a canvas reading is not quick
  retryTimer: null, // asks a busy server again after its Retry-After
  dragDepth: 0, // dragenter minus dragleave over the drop zone
};

// ---------------------------------------------------------------- options

function selectedTask() {
  const checked = document.querySelector('input[name="task"]:checked');
  const first = document.querySelector('input[name="task"]');
  return (checked || first || { value: "digit" }).value;
}

function taskLabel(task) {
  const input = document.querySelector(`input[name="task"][value="${task}"]`);
  return input ? input.closest("label").textContent.trim() : task;
}

/** The alphabet hint as a request field: only the character task takes one ({} for "any"). */
function alphabetField() {
  return selectedTask() === "character" && alphabetSelect.value !== "any" ? { alphabet: alphabetSelect.value } : {};
}

/** The line task's spelling switch as a request field ({} when on, the server's default). */
function correctField() {
  return selectedTask() === "line" && !correctSpelling.checked ? { correct: "false" } : {};
}

/** Show only the options of the current task, and its writing surface. */
function applyTask() {
  const task = selectedTask();
  const line = task === "line";
  $("alphabet-pick").hidden = task !== "character";
  $("correct-pick").hidden = !line;
  $("profile-pick").hidden = line; // profiles adapt the glyph models only
  $("page-options").hidden = line; // a line upload is always read line by line
  $("line-upload-hint").hidden = !line;
  $("engine-pick").hidden = line || !asPage.checked;
  $("canvas-hint").textContent = line ? HINTS.line : HINTS.glyph;
  layout.classList.toggle("wide-task", line);
  const changed = surface.use(line);
  penWidth.value = String(surface.pen);
  penWidthValue.textContent = `${surface.pen} px`;
  return changed;
}

// ---------------------------------------------------------------- requests

function cancelRequest() {
  state.seq += 1;
  clearTimeout(state.retryTimer);
  if (state.inflight) state.inflight.abort();
  state.inflight = null;
  clearTimeout(state.busyTimer);
  showProgress(null);
}

function readingStep(task, upload) {
  if (task === "page") return "Reading the page: finding every glyph, then reading them all…";
  if (task === "line") return upload ? "Reading the lines: finding each line, then reading it…" : "Reading your writing…";
  return upload ? "Reading the image…" : "Reading the drawing…";
}

/**
 * Make the reading request ``request(hooks)`` (api.js ``readDrawing`` or ``readUpload``) and show
 * the answer with ``from``, the input it belongs to. Only the latest request's answer is shown.
 * When the server says it is busy and when to come back (``Retry-After``), the request is sent
 * again then, up to ``RETRIES`` times, unless a newer one replaced it.
 */
async function send(request, from, task, tries = 0) {
  cancelRequest();
  const id = state.seq;
  const latest = () => id === state.seq;
  const step = readingStep(task, from.upload);
  let hooks = {};
  if (from.upload) {
    showProgress("Sending the image…");
    hooks = {
      onProgress: (loaded, total) => latest() && showProgress(`Sending the image… ${Math.round((100 * loaded) / total)}%`),
      onSent: () => latest() && showProgress(step),
    };
  } else {
    state.busyTimer = setTimeout(() => latest() && showProgress(step), BUSY_DELAY_MS);
  }
  state.inflight = request(hooks);
  const { response, body: answer } = await state.inflight.answer;
  if (!latest()) return;
  if (!response) {
    endRequest();
    clearResult();
    setStatus("Could not reach the server. Check the connection and try again.", "error");
    if (from.upload) focusResult();
    return;
  }
  if (from.thumbPromise) from.thumb = await from.thumbPromise;
  if (!latest()) return; // a newer request was made meanwhile: this answer is stale
  endRequest();
  const wait = response.retryAfter;
  if ((response.status === 503 || response.status === 429) && wait > 0 && wait <= RETRY_MAX_S && tries < RETRIES) {
    showProgress(`The server is busy; trying again in ${wait} s…`);
    state.retryTimer = setTimeout(() => latest() && send(request, from, task, tries + 1), wait * 1000);
    return;
  }
  if (response.ok && answer && !answer.error && typeof answer.text === "string") {
    showAnswer(answer, from);
  } else {
    clearResult();
    setStatus(errorMessage(response, answer, maxUploadMb), "error");
  }
  if (from.upload) focusResult();
}

/** The latest request has answered: it is no longer in flight, and its spinner goes. */
function endRequest() {
  state.inflight = null;
  clearTimeout(state.busyTimer);
  showProgress(null);
}

// ---------------------------------------------------------------- the drawing

function updateButtons() {
  undoButton.disabled = surface.strokes.length === 0;
}

function scheduleLive() {
  state.lastSource = "canvas";
  clearTimeout(state.liveTimer);
  state.liveTimer = setTimeout(predictCanvas, LIVE_DELAY_MS);
}

function predictCanvas() {
  clearTimeout(state.liveTimer);
  if (!surface.strokes.length) {
    cancelRequest();
    clearResult();
    setStatus("Draw something first.", "error");
    return;
  }
  state.lastSource = "canvas";
  const task = selectedTask();
  const image = surface.dataUrl();
  const from = { upload: false, thumb: surface.thumbnail(surface.wide ? 240 : 96), picture: image, taskLabel: taskLabel(task) };
  const fields = { image, task, ...(task === "line" ? {} : profileField()), ...alphabetField(), ...correctField() };
  send((hooks) => readDrawing(fields, hooks), from, task);
}

// Forget the drawing's answer: cancel what is pending so a late reply cannot reappear.
function forgetDrawing() {
  clearTimeout(state.liveTimer);
  if (state.lastSource === "canvas") {
    cancelRequest();
    state.lastSource = null;
    clearResult();
    setStatus("");
  }
}

function undo() {
  if (!surface.undo()) return;
  if (surface.strokes.length) scheduleLive();
  else forgetDrawing();
}

function clearDrawing() {
  surface.clear();
  forgetDrawing();
}

penWidth.addEventListener("input", () => {
  surface.pen = Number(penWidth.value);
  penWidthValue.textContent = `${penWidth.value} px`;
});
undoButton.addEventListener("click", undo);
$("clear").addEventListener("click", clearDrawing);
$("predict").addEventListener("click", predictCanvas);

$("canvas").addEventListener("keydown", (event) => {
  if (event.key === "Enter" || event.key === " ") {
    event.preventDefault();
    predictCanvas();
  } else if (event.key === "Delete" || event.key === "Backspace") {
    event.preventDefault();
    clearDrawing();
  }
});

document.addEventListener("keydown", (event) => {
  const t = event.target;
  const typing =
    t instanceof HTMLElement &&
    (t.isContentEditable || (/^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName) && t.type !== "radio" && t.type !== "range"));
  if ((event.ctrlKey || event.metaKey) && !event.shiftKey && !event.altKey && event.key.toLowerCase() === "z" && !typing) {
    event.preventDefault();
    undo();
  }
});

// ---------------------------------------------------------------- upload

async function fileThumbnail(file) {
  try {
    const bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
    const url = shrinkTo(bitmap, 160);
    bitmap.close();
    return url;
  } catch (_) {
    return null; // e.g. a TIFF the browser cannot show; the server may still read it
  }
}

function uploadFile(file) {
  if (!file) return;
  clearTimeout(state.liveTimer);
  if (file.size > maxUploadBytes) {
    cancelRequest();
    clearResult();
    const mb = (file.size / 1024 / 1024).toFixed(1);
    setStatus(`That file is ${mb} MB; the limit is ${maxUploadMb} MB.`, "error");
    focusResult();
    return;
  }
  state.lastSource = { file };
  if (state.pictureUrl) URL.revokeObjectURL(state.pictureUrl);
  state.pictureUrl = URL.createObjectURL(file);
  let task = selectedTask();
  let label = taskLabel(task);
  let fields;
  if (asPage.checked && task !== "line") {
    const [kind, name, engine] = pageEngine.value.split(":"); // "cnn", "hog" or "personal:<name>:<engine>"
    // a page's alphabet names what it holds: digits, or characters (optionally only letters, capitals...)
    const alphabet = kind === "personal" ? "digit" : alphabetField().alphabet || task;
    fields = { task: "page", alphabet, engine: kind === "personal" ? engine : kind };
    if (kind === "personal") fields.profile = name;
    else if (kind === "cnn") Object.assign(fields, profileField());
    label = `Page of ${alphabet === "digit" ? "digits" : "characters"}`;
    task = "page";
  } else {
    fields = { task, ...(task === "line" ? {} : profileField()), ...alphabetField(), ...correctField() };
  }
  const from = { upload: true, name: file.name || "from the clipboard", picture: state.pictureUrl, taskLabel: label, thumbPromise: fileThumbnail(file) };
  send((hooks) => readUpload(file, fields, hooks), from, task);
}

const fileInput = $("file-input");
const dropZone = $("drop-zone");
fileInput.addEventListener("change", () => {
  uploadFile(fileInput.files && fileInput.files[0]);
  fileInput.value = ""; // choosing the same file again still fires "change"
});

const hasFiles = (event) => event.dataTransfer && Array.from(event.dataTransfer.types || []).includes("Files");
dropZone.addEventListener("dragenter", (event) => {
  if (!hasFiles(event)) return;
  event.preventDefault();
  state.dragDepth += 1;
  dropZone.classList.add("dragover");
});
dropZone.addEventListener("dragover", (event) => {
  if (!hasFiles(event)) return;
  event.preventDefault();
  event.dataTransfer.dropEffect = "copy";
  dropZone.classList.add("dragover");
});
dropZone.addEventListener("dragleave", () => {
  state.dragDepth = Math.max(0, state.dragDepth - 1);
  if (!state.dragDepth) dropZone.classList.remove("dragover");
});
dropZone.addEventListener("drop", (event) => {
  event.preventDefault();
  state.dragDepth = 0;
  dropZone.classList.remove("dragover");
  const file = event.dataTransfer && event.dataTransfer.files[0];
  if (file) uploadFile(file);
});
// A file dropped beside the zone must not make the browser navigate away to it.
for (const type of ["dragover", "drop"]) {
  window.addEventListener(type, (event) => {
    if (hasFiles(event) && !dropZone.contains(event.target)) event.preventDefault();
  });
}
document.addEventListener("paste", (event) => {
  const items = event.clipboardData ? Array.from(event.clipboardData.files || []) : [];
  const image = items.find((f) => f.type.startsWith("image/"));
  if (image) {
    event.preventDefault();
    uploadFile(image);
  }
});

// ---------------------------------------------------------------- changes of task and option

function reread() {
  if (state.lastSource && state.lastSource.file) uploadFile(state.lastSource.file);
  else if (surface.strokes.length) predictCanvas();
  else if (state.lastSource === "canvas") forgetDrawing();
}

for (const radio of document.querySelectorAll('input[name="task"]')) {
  radio.addEventListener("change", () => {
    applyTask();
    if (!(state.lastSource && state.lastSource.file) && !surface.strokes.length) {
      clearResult(); // this shape holds no drawing yet (the other shape keeps its own)
      state.lastSource = null;
    }
    reread();
  });
}
alphabetSelect.addEventListener("change", reread);
correctSpelling.addEventListener("change", reread);
$("profile-select").addEventListener("change", reread);
asPage.addEventListener("change", () => {
  $("engine-pick").hidden = !asPage.checked;
});

applyTask();
updateButtons();
surface.setup();
renderHistory();
initTeach({ drawing: () => (surface.strokes.length && !surface.wide ? surface.dataUrl() : null), task: selectedTask });
loadPersonal();
