/* The result area: one place for the answer to whatever was just done (a drawn glyph, a drawn
 * sequence, lines of text, a page), its progress and errors, the input it belongs to, copy and
 * downloads. Every text shown is the server's; corrections edit that text in place. */

import { feedbackControl } from "./feedback.js";
import { noteFeedback, remember } from "./history.js";
import { $, copyText, csvField, download, element, percent, plural, postFeedback, quoteList, errorMessage } from "./util.js";

const panel = $("result-panel");
const progress = $("progress");
const progressStep = $("progress-step");
const statusBox = $("status");
const empty = $("result-empty");
const source = $("source");
const sourceThumb = $("source-thumb");
const sourceCaption = $("source-caption");
const glyphView = $("glyph-view");
const resultText = $("result-text");
const resultConfidence = $("result-confidence");
const resultNote = $("result-note");
const feedbackSlot = $("feedback-slot");
const candidatesHeading = $("candidates-heading");
const candidatesList = $("candidates");
const seen = $("seen");
const seenImage = $("input-28");
const boxesView = $("boxes-view");
const boxesNote = $("boxes-note");
const boxedImage = $("boxed-image");
const boxedPicture = $("boxed-picture");
const boxes = $("boxes");
const legend = $("legend");
const lineList = $("line-list");
const pageFix = $("page-fix");
const pageFixLabel = $("page-fix-label");
const pageFixQuestion = $("page-fix-question");
const pageStatus = $("page-status");
const loupe = $("loupe");
const loupeView = $("loupe-view");
const loupePage = $("loupe-page");
const loupePicture = $("loupe-picture");
const loupeBoxes = $("loupe-boxes");
const actions = $("result-actions");
const csvButton = $("download-csv");
const annotatedLink = $("download-annotated");
const modelInfo = $("model-info");

let shown = null; // {data, kind, text(): string, key}: the answer on screen

// ---------------------------------------------------------------- progress, status, source

/** The spinner and the step being done; ``null`` hides it. */
export function showProgress(step) {
  progress.hidden = step === null;
  if (step !== null) progressStep.textContent = step;
  panel.setAttribute("aria-busy", step === null ? "false" : "true");
  panel.classList.toggle("busy", step !== null);
}

export function setStatus(message, kind) {
  statusBox.textContent = message;
  statusBox.classList.toggle("error", kind === "error");
}

/** Move the keyboard and the screen reader to the result (after an upload). */
export function focusResult() {
  panel.focus({ preventScroll: true });
  const top = panel.getBoundingClientRect().top;
  if (top < 0 || top > window.innerHeight * 0.6) panel.scrollIntoView({ block: "start" });
}

function showSource(from) {
  source.hidden = !from;
  if (!from) return;
  sourceThumb.hidden = !from.thumb;
  if (from.thumb) sourceThumb.src = from.thumb;
  else sourceThumb.removeAttribute("src");
  sourceThumb.alt = from.upload ? `The uploaded image ${from.name}` : "Your drawing";
  sourceCaption.textContent = `${from.upload ? `Upload: ${from.name}` : "Your drawing"} · read as ${from.taskLabel}`;
}

export function clearResult() {
  shown = null;
  empty.hidden = false;
  showSource(null);
  glyphView.hidden = true;
  boxesView.hidden = true;
  boxesView.className = "boxes-view";
  resultText.textContent = "";
  resultText.className = "result-text";
  resultConfidence.textContent = "";
  resultNote.textContent = "";
  resultNote.hidden = true;
  candidatesList.replaceChildren();
  candidatesHeading.hidden = true;
  seen.hidden = true;
  seenImage.removeAttribute("src");
  feedbackSlot.replaceChildren();
  boxes.replaceChildren();
  lineList.replaceChildren();
  boxedPicture.removeAttribute("src");
  pageFix.hidden = true;
  loupe.hidden = true;
  loupeBoxes.replaceChildren();
  loupePicture.removeAttribute("src");
  pageStatus.textContent = "";
  legend.hidden = true;
  actions.hidden = true;
  modelInfo.textContent = "";
  fixing = null;
}

// ---------------------------------------------------------------- answers

/**
 * Show an answer. ``from``: {upload, name, thumb, picture, taskLabel}: the input it belongs to
 * (``picture``: the full image the boxes of a line answer are drawn on).
 */
export function showAnswer(data, from) {
  clearResult();
  empty.hidden = true;
  showSource(from);
  if (data.task === "page") showPage(data, from);
  else if (data.task === "line") showLines(data, from);
  else if (data.sequence) showSequence(data, from);
  else showGlyph(data, from);
  actions.hidden = false;
  csvButton.hidden = !Array.isArray(data.glyphs);
  annotatedLink.hidden = data.task !== "page";
  const model = data.model || {};
  // "yours" is decided by a calibrated threshold, not by the largest probability: no percentage for it
  const w = data.writer || {};
  const writer = w.label ? ` · writer: ${w.label}${w.label === "yours" ? "" : ` (${percent(w.probability)})`}` : "";
  modelInfo.textContent = model.name ? `Model: ${model.name}${model.version ? ` · version ${model.version}` : ""}${writer}` : "";
}

function keep(from, data, kind, text, parts) {
  return remember({ task: from.taskLabel, kind, source: from.upload ? "upload" : "drawing", text, thumb: from.thumb, parts });
}

function showGlyph(data, from) {
  glyphView.hidden = false;
  const best = Array.isArray(data.candidates) && data.candidates.length ? data.candidates[0].label : "";
  const alikes = Array.isArray(data.lookalikes) ? data.lookalikes : [];
  if (data.unsure) {
    resultText.textContent = `Not sure – best guess ${best} (${percent(data.confidence)})`;
    resultText.classList.add("unsure");
    resultNote.textContent = data.message || "";
  } else {
    resultText.textContent = data.text;
    resultConfidence.textContent = `${percent(data.confidence)} confident`;
    resultNote.textContent = alikes.length
      ? `“${data.text}” looks the same as ${quoteList(alikes)} in many people's handwriting: check the candidates.`
      : "";
  }
  resultNote.hidden = !resultNote.textContent;
  const items = (Array.isArray(data.candidates) ? data.candidates : []).map((c, i) => {
    const p = Math.max(0, Math.min(1, Number(c.probability) || 0));
    const li = element("li", i === 0 ? "candidate top" : "candidate");
    const track = element("span", "candidate-track");
    track.setAttribute("aria-hidden", "true");
    const bar = element("span", "candidate-bar");
    bar.style.width = `${(p * 100).toFixed(2)}%`;
    track.append(bar);
    li.append(element("span", "candidate-label", c.label), track, element("span", "candidate-prob", percent(p)));
    return li;
  });
  candidatesList.replaceChildren(...items);
  candidatesHeading.hidden = items.length === 0;
  if (typeof data.input_28x28 === "string" && data.input_28x28.startsWith("data:image/")) {
    seenImage.src = data.input_28x28;
    seen.hidden = false;
  }
  const part = { id: data.prediction_id, predicted: best, unsure: !!data.unsure, name: "answer" };
  const key = keep(from, data, "glyph", data.unsure ? "" : data.text, [part]);
  if (typeof data.prediction_id === "string") {
    feedbackSlot.append(feedbackControl(part, { prefix: "feedback", onSaved: (s) => noteFeedback(key, part.id, s) }));
  }
  shown = { data, kind: "glyph", text: () => data.text || "" };
  setStatus(data.unsure ? data.message || "Not sure." : `Read “${data.text}”, ${percent(data.confidence)} confident.`);
}

/** Boxes over ``picture`` (percentages of the answer's image size): one per glyph or line. */
function drawBoxes(data, items, picture, label, onClick) {
  boxedImage.hidden = !picture;
  if (picture) boxedPicture.src = picture;
  boxedPicture.onerror = () => {
    boxedImage.hidden = true; // a TIFF the browser cannot show: the list below still has it all
  };
  const { width: W, height: H } = data.image;
  boxes.replaceChildren(
    ...items.map((g, i) => {
      const box = element(onClick ? "button" : "span", `box${g.unsure ? " unsure" : ""}`);
      if (onClick) {
        box.type = "button";
        box.addEventListener("click", (event) => onClick(i, event));
      }
      box.style.left = `${(g.x / W) * 100}%`;
      box.style.top = `${(g.y / H) * 100}%`;
      box.style.width = `${(g.w / W) * 100}%`;
      box.style.height = `${(g.h / H) * 100}%`;
      box.setAttribute("aria-label", label(g, i));
      if (!onClick) box.dataset.n = String(i + 1);
      return box;
    }),
  );
}

function showSequence(data, from) {
  glyphView.hidden = false;
  boxesView.hidden = false;
  boxesView.classList.add("sequence");
  resultText.textContent = data.text;
  resultConfidence.textContent = `${plural(data.glyphs.length, "character")} side by side, ${percent(data.confidence)} confident on the least sure`;
  boxesNote.textContent = "Read one by one, left to right: say for each whether it is right.";
  drawBoxes(data, data.glyphs, from.picture, (g, i) => `Character ${i + 1}: “${g.text}”`);
  const parts = data.glyphs.map((g, i) => ({ id: g.prediction_id, predicted: g.text, unsure: !!g.unsure, name: `character ${i + 1}` }));
  const key = keep(from, data, "sequence", data.text, parts);
  lineList.replaceChildren(
    ...data.glyphs.map((g, i) => {
      const li = element("li", "line-item");
      const head = element("div", "line-head");
      if (g.input_28x28) {
        const img = element("img", "line-seen");
        img.src = g.input_28x28;
        img.alt = `What the model saw of character ${i + 1}`;
        head.append(img);
      }
      head.append(element("span", "line-text", g.text), element("span", "line-confidence", g.unsure ? `not sure, ${percent(g.confidence)}` : percent(g.confidence)));
      li.append(head);
      if (g.prediction_id) {
        li.append(feedbackControl(parts[i], { prefix: `glyph-${i}-feedback`, onSaved: (s) => noteFeedback(key, parts[i].id, s) }));
      }
      return li;
    }),
  );
  shown = { data, kind: "sequence", text: () => data.text };
  setStatus(`Read “${data.text}”: ${plural(data.glyphs.length, "character")} side by side.`);
}

function showLines(data, from) {
  boxesView.hidden = false;
  const notes = [];
  if (data.lines.some((l) => (l.corrections || []).length)) notes.push("Underlined words were corrected: click one to put back what was written.");
  if (data.dropped && data.dropped.length) {
    notes.push(`Left out ${plural(data.dropped.length, "line")} that did not look handwritten (printed, ruled or cut off).`);
  }
  if (data.message) notes.push(data.message);
  boxesNote.textContent = notes.join(" ");
  drawBoxes(data, data.lines, from.picture, (l, i) => `Line ${i + 1}: ${l.text}`);
  const parts = data.lines.map((l, i) => ({ id: l.prediction_id, predicted: l.text, unsure: false, wide: true, name: `line ${i + 1}` }));
  const key = keep(from, data, "lines", data.text, parts);
  lineList.replaceChildren(
    ...data.lines.map((line, i) => {
      const li = element("li", "line-item");
      const head = element("div", "line-head");
      const text = element("span", "line-text");
      text.append(...lineWords(line));
      head.append(element("span", "line-number", String(i + 1)), text, element("span", "line-confidence", `${percent(line.confidence)} confident`));
      li.append(head);
      if (line.prediction_id) {
        li.append(
          feedbackControl(parts[i], {
            prefix: `line-${i}-feedback`,
            question: `Is line ${i + 1} right?`,
            onSaved: (s) => noteFeedback(key, parts[i].id, s),
          }),
        );
      }
      return li;
    }),
  );
  shown = { data, kind: "lines", text: () => [...lineList.querySelectorAll(".line-text")].map((t) => t.textContent).join("\n") };
  setStatus(`Read ${plural(data.lines.length, "line")}, ${percent(data.confidence)} confident on average.`);
}

/** A line's text as nodes: each corrected word a button that swaps between the correction and
 * the raw reading (``corrections[].word`` counts the line's words from 0). */
function lineWords(line) {
  const changes = new Map((line.corrections || []).map((c) => [c.word, c]));
  const nodes = [];
  let last = 0;
  let n = 0;
  for (const m of line.text.matchAll(/[A-Za-z]+/g)) {
    const change = changes.get(n++);
    if (!change) continue;
    nodes.push(line.text.slice(last, m.index));
    const button = element("button", "corrected-word", change.corrected);
    button.type = "button";
    button.title = `Read as “${change.raw}”; click to use that`;
    button.addEventListener("click", () => {
      const raw = button.textContent === change.corrected;
      button.textContent = raw ? change.raw : change.corrected;
      button.classList.toggle("raw", raw);
      button.title = raw ? `Corrected to “${change.corrected}”; click to use that` : `Read as “${change.raw}”; click to use that`;
    });
    nodes.push(button);
    last = m.index + m[0].length;
  }
  nodes.push(line.text.slice(last));
  return nodes;
}

// ---------------------------------------------------------------- pages

let fixing = null; // index of the page glyph being corrected

function showPage(data, from) {
  boxesView.hidden = false;
  legend.hidden = false;
  boxesNote.textContent = "Click a box to correct what was read there.";
  data.glyphs.forEach((g) => {
    g.predicted = g.text; // what the engine read; corrections are compared with this
  });
  const texts = data.lines.map((l) => l.text);
  annotatedLink.href = data.annotated_png;
  const label = (g) => `Read as “${g.text}”, ${percent(g.confidence)}${g.unsure ? ", not sure" : ""}. Correct it`;
  drawBoxes(data, data.glyphs, data.annotated_png, label, (i, event) => needsLoupe(event) || startFix(i));
  drawLoupe(data);
  const parts = data.glyphs.map((g, i) => ({ id: g.prediction_id, predicted: g.text, unsure: !!g.unsure, name: `glyph ${i + 1}`, line: g.line, space: !!g.space_before }));
  const key = keep(from, data, "page", data.text, parts);
  lineList.replaceChildren(
    ...data.lines.map((line, r) => {
      const li = element("li", "line-item");
      const head = element("div", "line-head");
      const of = data.glyphs.filter((g) => g.line === r);
      const mean = of.reduce((s, g) => s + g.confidence, 0) / Math.max(1, of.length);
      head.append(element("span", "line-number", String(r + 1)), element("span", "line-text", line.text), element("span", "line-confidence", `${percent(mean)} confident`));
      li.append(head);
      return li;
    }),
  );
  shown = { data, kind: "page", key, texts, text: () => texts.join("\n") };
  const count = data.glyphs.length;
  setStatus(data.message || `Read ${plural(count, "character")} on ${plural(data.lines.length, "line")}.`);
}

function startFix(i) {
  if (!shown || shown.kind !== "page" || i < 0 || !shown.data.glyphs[i].prediction_id) return;
  fixing = i;
  shown.data.glyphs.forEach((_, k) => markBox(k, "selected", k === i));
  pageFixQuestion.textContent = `Read as “${shown.data.glyphs[i].predicted}”. Right answer`;
  pageFix.hidden = false;
  pageFixLabel.value = "";
  if (loupe.hidden) return pageFixLabel.focus();
  pageFixLabel.focus({ preventScroll: true }); // keep the magnifier in view above the form
  loupe.scrollIntoView({ block: "nearest" });
  pageFix.scrollIntoView({ block: "nearest" });
}

function closeFix() {
  const at = fixing;
  pageFix.hidden = true;
  fixing = null;
  if (shown && shown.kind === "page") shown.data.glyphs.forEach((_, k) => markBox(k, "selected", false));
  if (!loupe.hidden) $("loupe-close").focus({ preventScroll: true });
  else if (at !== null && boxes.children[at]) boxes.children[at].focus();
}

/** Set or clear a state ("selected", "fixed") on glyph ``i``'s box on the page and in the magnifier. */
function markBox(i, state, on) {
  for (const layer of [boxes, loupeBoxes]) {
    if (layer.children[i]) layer.children[i].classList.toggle(state, on);
  }
}

// ---------------------------------------------------------------- the magnifier

const TAP_PX = 44; // WCAG target size: page boxes shown smaller than this get the magnifier on touch
const LOUPE_GLYPH_PX = 64; // the magnifier shows the page's typical glyph this tall

function medianHeight(glyphs) {
  const heights = glyphs.map((g) => g.h).sort((a, b) => a - b);
  return heights[Math.floor(heights.length / 2)] || 1;
}

let lastPointer = "mouse"; // a click made by Enter or Space carries no pointer type of its own
boxes.addEventListener("pointerdown", (event) => {
  lastPointer = event.pointerType;
});

/** A finger's tap on a page whose boxes are smaller than a fingertip: the magnifier answers it. */
function needsLoupe(event) {
  if (!shown || shown.kind !== "page" || event.detail === 0) return false; // keyboard: the box itself
  if ((event.pointerType || lastPointer) !== "touch") return false;
  const scale = boxedPicture.getBoundingClientRect().height / shown.data.image.height;
  return medianHeight(shown.data.glyphs) * scale < TAP_PX;
}

/** The point of ``event`` in the answer's image pixels, on ``layer`` (the page or the magnifier). */
function imagePoint(event, layer) {
  const r = layer.getBoundingClientRect();
  const { width: W, height: H } = shown.data.image;
  return [((event.clientX - r.left) / r.width) * W, ((event.clientY - r.top) / r.height) * H];
}

/** The correctable glyph whose box is nearest to (x, y); inside two boxes, the nearer centre. */
function nearestGlyph(x, y) {
  let best = -1;
  let bestCost = Infinity;
  shown.data.glyphs.forEach((g, i) => {
    if (!g.prediction_id) return;
    const dx = Math.max(g.x - x, 0, x - (g.x + g.w));
    const dy = Math.max(g.y - y, 0, y - (g.y + g.h));
    const cost = Math.hypot(dx, dy) + 1e-3 * Math.hypot(x - (g.x + g.w / 2), y - (g.y + g.h / 2));
    if (cost < bestCost) [best, bestCost] = [i, cost];
  });
  return best;
}

/** The magnifier's copy of the page: the annotated picture with a box per glyph, not yet shown. */
function drawLoupe(data) {
  const { width: W, height: H } = data.image;
  loupePicture.src = data.annotated_png;
  loupeBoxes.replaceChildren(
    ...data.glyphs.map((g) => {
      const box = element("span", `loupe-box${g.unsure ? " unsure" : ""}`);
      box.style.left = `${(g.x / W) * 100}%`;
      box.style.top = `${(g.y / H) * 100}%`;
      box.style.width = `${(g.w / W) * 100}%`;
      box.style.height = `${(g.h / H) * 100}%`;
      return box;
    }),
  );
}

/** Show the magnifier centred on (x, y) of the page, its typical glyph ``LOUPE_GLYPH_PX`` tall. */
function openLoupe(x, y) {
  const { width: W, height: H } = shown.data.image;
  const zoom = LOUPE_GLYPH_PX / medianHeight(shown.data.glyphs); // CSS pixels per image pixel
  loupePage.style.width = `${Math.round(W * zoom)}px`;
  loupePage.style.height = `${Math.round(H * zoom)}px`;
  loupe.hidden = false;
  loupeView.scrollLeft = x * zoom - loupeView.clientWidth / 2;
  loupeView.scrollTop = y * zoom - loupeView.clientHeight / 2;
}

function closeLoupe() {
  const at = fixing;
  loupe.hidden = true;
  closeFix();
  if (at !== null && boxes.children[at]) boxes.children[at].focus({ preventScroll: true });
}

// a tap on the page (on a box or between them) magnifies where it landed and opens the nearest glyph
boxes.addEventListener("click", (event) => {
  if (!needsLoupe(event)) return;
  const [x, y] = imagePoint(event, boxes);
  openLoupe(x, y);
  startFix(nearestGlyph(x, y));
});
loupePage.addEventListener("click", (event) => {
  if (shown && shown.kind === "page") startFix(nearestGlyph(...imagePoint(event, loupePage)));
});
$("loupe-close").addEventListener("click", closeLoupe);
loupe.addEventListener("keydown", (event) => {
  if (event.key === "Escape") closeLoupe();
});

function pageSays(message, kind) {
  pageStatus.textContent = message;
  pageStatus.classList.toggle("error", kind === "error");
}

/** The page line text with glyph ``i``'s character replaced: the k-th glyph of a line is the k-th
 * character of its text that is not a space (the server's text, edited in place). */
function replaceGlyph(about, i, label) {
  const g = about.data.glyphs[i];
  const k = about.data.glyphs.slice(0, i).filter((o) => o.line === g.line).length;
  const text = about.texts[g.line];
  let seenChars = -1;
  for (let at = 0; at < text.length; at++) {
    if (text[at] !== " ") seenChars++;
    if (seenChars === k) {
      about.texts[g.line] = text.slice(0, at) + label + text.slice(at + 1);
      break;
    }
  }
  const row = lineList.children[g.line];
  if (row) row.querySelector(".line-text").textContent = about.texts[g.line];
}

let fixSaving = false;
pageFix.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (fixing === null || !shown || shown.kind !== "page" || fixSaving) return;
  const about = shown; // the answer and glyph this correction is for, whatever happens meanwhile
  const index = fixing;
  const glyph = about.data.glyphs[index];
  const label = pageFixLabel.value.trim();
  if (!label) return pageSays("Type the character that is written there.", "error");
  const correct = label === glyph.predicted; // always against what the engine read, not an earlier fix
  fixSaving = true;
  const { response, body: reply } = await postFeedback({ prediction_id: glyph.prediction_id, correct, label: correct ? undefined : label });
  fixSaving = false;
  if (shown !== about) return; // another answer is on screen now
  if (!response) return pageSays("Could not reach the server; the correction was not saved.", "error");
  if (!response.ok || !reply || reply.status !== "saved") {
    pageSays(errorMessage(response, reply), "error");
    if (fixing === index) pageFixLabel.focus();
    return;
  }
  glyph.text = label;
  replaceGlyph(about, index, label);
  markBox(index, "fixed", !correct);
  noteFeedback(about.key, glyph.prediction_id, { correct, label: correct ? null : label });
  pageSays(correct ? `Saved: “${label}” was read right.` : `Saved: it is “${label}”.`);
  if (fixing === index) closeFix();
});

$("page-fix-cancel").addEventListener("click", closeFix);
pageFixLabel.addEventListener("keydown", (event) => {
  if (event.key === "Escape") {
    event.preventDefault();
    closeFix();
  }
});

// ---------------------------------------------------------------- copy and downloads

function baseName() {
  return `handwriting-${shown.data.task}${shown.kind === "sequence" ? "-sequence" : ""}`;
}

$("copy-text").addEventListener("click", async () => {
  if (!shown) return;
  const ok = await copyText(shown.text());
  setStatus(ok ? "Text copied." : "The browser did not allow copying: use the .txt download.", ok ? "" : "error");
});

$("download-txt").addEventListener("click", () => {
  if (shown) download(`${baseName()}.txt`, `${shown.text()}\n`, "text/plain;charset=utf-8");
});

$("download-json").addEventListener("click", () => {
  if (shown) download(`${baseName()}.json`, JSON.stringify(shown.data, null, 2), "application/json");
});

csvButton.addEventListener("click", () => {
  if (!shown || !Array.isArray(shown.data.glyphs)) return;
  const head = ["line", "text", "confidence", "unsure", "x", "y", "w", "h", "prediction_id"];
  const rows = shown.data.glyphs.map((g) => [g.line, g.text, g.confidence, g.unsure, g.x, g.y, g.w, g.h, g.prediction_id]);
  const csv = [head, ...rows].map((r) => r.map(csvField).join(",")).join("\n");
  download(`${baseName()}.csv`, `${csv}\n`, "text/csv;charset=utf-8");
});
