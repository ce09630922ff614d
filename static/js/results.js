/* The result area: one place for the answer to whatever was just done, its progress and errors,
 * the input it belongs to, copy and downloads. This module renders a drawn glyph, a drawn sequence
 * and lines of text; page.js renders a page (its boxes, corrections and magnifier). Every text shown
 * is the server's; corrections edit that text in place. */

import { feedbackControl } from "./feedback.js";
import { noteFeedback, remember } from "./history.js";
import { clearPage, drawBoxes, showPage } from "./page.js";
import { $, copyText, csvField, download, element, percent, plural, quoteList } from "./util.js";

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
const lineList = $("line-list");
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
  lineList.replaceChildren();
  clearPage();
  actions.hidden = true;
  modelInfo.textContent = "";
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
  if (data.task === "page") shown = showPage(data, from, { keep, setStatus });
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
 * the raw reading (``corrections[].start`` and ``end``: where the server put it in the text). */
function lineWords(line) {
  const nodes = [];
  let last = 0;
  for (const change of line.corrections || []) {
    nodes.push(line.text.slice(last, change.start));
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
    last = change.end;
  }
  nodes.push(line.text.slice(last));
  return nodes;
}

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
