/* The last 50 answers in this browser (localStorage): thumbnail, task, answer, feedback given and
 * time. Feedback can be changed from here while the server still knows the answer: a control per
 * part for short answers, and for a page its glyphs line by line, each opening its own control.
 * When the browser's storage is full the oldest answers go first. */

import { feedbackControl } from "./feedback.js";
import { $, element } from "./util.js";

const KEY = "hwr-history";
const KEEP = 50;
const CONTROLS_UP_TO = 12; // answers with more parts (a page) list their glyphs; one opens its control

const list = $("history-list");
const empty = $("history-empty");
const clearButton = $("history-clear");
const note = $("history-note");

let picked = null; // {key, id}: the glyph of a page answer whose feedback control is open

function load() {
  try {
    const items = JSON.parse(localStorage.getItem(KEY) || "[]");
    return Array.isArray(items) ? items : [];
  } catch (_) {
    return [];
  }
}

/** Save the newest ``KEEP`` answers, dropping the oldest while the storage is full; returns how
 * many were kept (0 when the browser keeps none, as in some private modes). */
function store(items) {
  let keep = items.slice(0, KEEP);
  while (keep.length) {
    try {
      localStorage.setItem(KEY, JSON.stringify(keep));
      return keep.length;
    } catch (_) {
      if (keep.length > 1) keep = keep.slice(0, -1);
      else if (keep[0].parts.length) keep = [{ ...keep[0], parts: [], tooLarge: true }]; // the answer, not its parts
      else return 0;
    }
  }
  return 0;
}

/**
 * Keep an answer: {task, kind, text, thumb, parts: [{id, predicted, unsure, wide, name}]}.
 * Returns its key, by which ``noteFeedback`` records what was said about a part.
 */
export function remember(entry) {
  const key = `${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
  const parts = entry.parts.filter((p) => p.id).map((p) => ({ ...p, feedback: null }));
  const items = [{ ...entry, key, time: new Date().toISOString(), parts }, ...load()];
  const kept = store(items);
  note.hidden = kept >= Math.min(items.length, KEEP);
  note.textContent = kept
    ? "This browser's storage is full: the oldest answers were removed to make room."
    : "This browser does not keep a history (storage is off or full).";
  render();
  return key;
}

/** Record the feedback saved on part ``id`` of answer ``key``. */
export function noteFeedback(key, id, feedback) {
  const items = load();
  const item = items.find((i) => i.key === key);
  const part = item && item.parts.find((p) => p.id === id);
  if (!part) return;
  part.feedback = feedback;
  store(items);
  render();
}

function describe(feedback) {
  if (!feedback) return "no feedback";
  if (feedback.correct) return "right";
  return feedback.label ? `wrong, it is “${feedback.label}”` : "wrong";
}

function entryNode(item) {
  const li = element("li", "history-item");
  li.dataset.key = item.key;
  const head = element("div", "history-head");
  if (item.thumb) {
    const img = element("img", "history-thumb");
    img.src = item.thumb;
    img.alt = item.source === "upload" ? "The uploaded image" : "The drawing";
    head.append(img);
  }
  const what = element("div", "history-what");
  const text = element("p", "history-text", item.text || "(not sure)");
  const time = new Date(item.time);
  const given = item.parts.filter((p) => p.feedback).length;
  const meta = element(
    "p",
    "history-meta",
    `${item.task} · ${item.source || "drawing"} · ${time.toLocaleString()} · ` +
      (item.tooLarge
        ? "too large to keep its feedback here"
        : item.parts.length === 1
          ? describe(item.parts[0].feedback)
          : `feedback on ${given} of ${item.parts.length}`),
  );
  what.append(text, meta);
  head.append(what);
  li.append(head);
  if (item.parts.length && item.parts.length <= CONTROLS_UP_TO) {
    const details = element("details", "history-change");
    details.append(element("summary", "", "Change feedback"));
    for (const part of item.parts) {
      if (item.parts.length > 1) details.append(element("p", "history-part", `${part.name}: “${part.predicted}”`));
      details.append(
        feedbackControl(part, { given: part.feedback, onSaved: (state) => noteFeedback(item.key, part.id, state) }),
      );
    }
    li.append(details);
  } else if (item.parts.length) {
    li.append(glyphPicker(item));
  }
  return li;
}

/** A page's glyphs line by line, each a button showing what it is now; the picked one gets a
 * feedback control below them. */
function glyphPicker(item) {
  const details = element("details", "history-change");
  details.append(element("summary", "", "Change feedback, glyph by glyph"));
  const byLine = new Map();
  for (const part of item.parts) {
    const line = Number(part.line) || 0;
    if (!byLine.has(line)) byLine.set(line, []);
    byLine.get(line).push(part);
  }
  const slot = element("div", "history-slot");
  const rows = new Map(); // line -> its row of glyph buttons
  const open = (part) => {
    picked = { key: item.key, id: part.id };
    details.querySelectorAll(".history-glyph").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.id === part.id)));
    const control = feedbackControl(part, { given: part.feedback, onSaved: (state) => noteFeedback(item.key, part.id, state) });
    const line = Number(part.line) || 0;
    slot.replaceChildren(element("p", "history-part", `Line ${line + 1}: read as “${part.predicted}”`), control);
    rows.get(line).after(slot); // right under the glyph's own line, not below the whole page
    return control;
  };
  for (const [line, parts] of byLine) {
    const row = element("p", "history-glyphs");
    row.setAttribute("role", "group");
    row.setAttribute("aria-label", `Line ${line + 1}`);
    row.append(element("span", "history-line-number", String(line + 1)));
    for (const part of parts) {
      const f = part.feedback;
      const state = !f ? "" : f.correct ? " right" : " wrong";
      const button = element("button", `history-glyph${state}${part.space ? " after-space" : ""}`, f && !f.correct && f.label ? f.label : part.predicted);
      button.type = "button";
      button.dataset.id = part.id;
      button.setAttribute("aria-label", `Line ${line + 1}, read as “${part.predicted}”: ${describe(f)}`);
      button.setAttribute("aria-pressed", "false");
      button.addEventListener("click", () => open(part).querySelector("button").focus());
      row.append(button);
    }
    details.append(row);
    rows.set(line, row);
  }
  const again = picked && picked.key === item.key && item.parts.find((p) => p.id === picked.id);
  if (again) open(again);
  return details;
}

export function render() {
  const items = load();
  const open = new Set([...list.querySelectorAll("details[open]")].map((d) => d.closest("li").dataset.key));
  list.replaceChildren(
    ...items.map((item) => {
      const node = entryNode(item);
      if (open.has(item.key)) node.querySelector("details").open = true;
      return node;
    }),
  );
  empty.hidden = items.length > 0;
  clearButton.disabled = items.length === 0;
}

clearButton.addEventListener("click", () => {
  localStorage.removeItem(KEY);
  picked = null;
  note.hidden = true;
  render();
});
