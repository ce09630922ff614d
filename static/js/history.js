/* The last 50 answers in this browser (localStorage): thumbnail, task, answer, feedback given and
 * time. Feedback can be changed from here while the server still knows the answer. */

import { feedbackControl } from "./feedback.js";
import { $, element } from "./util.js";

const KEY = "hwr-history";
const KEEP = 50;
const CONTROLS_UP_TO = 12; // answers with more parts (a page) list their corrections, not a control each

const list = $("history-list");
const empty = $("history-empty");
const clearButton = $("history-clear");

function load() {
  try {
    const items = JSON.parse(localStorage.getItem(KEY) || "[]");
    return Array.isArray(items) ? items : [];
  } catch (_) {
    return [];
  }
}

function store(items) {
  try {
    localStorage.setItem(KEY, JSON.stringify(items.slice(0, KEEP)));
  } catch (_) {
    // storage full or off: drop the oldest half and try once more
    try {
      localStorage.setItem(KEY, JSON.stringify(items.slice(0, Math.floor(KEEP / 2))));
    } catch (_) {
      /* private mode: no history */
    }
  }
}

/**
 * Keep an answer: {task, kind, text, thumb, parts: [{id, predicted, unsure, wide, name}]}.
 * Returns its key, by which ``noteFeedback`` records what was said about a part.
 */
export function remember(entry) {
  const key = `${Date.now()}-${Math.random().toString(36).slice(2, 8)}`;
  const parts = entry.parts.filter((p) => p.id).map((p) => ({ ...p, feedback: null }));
  store([{ ...entry, key, time: new Date().toISOString(), parts }, ...load()]);
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
      (item.parts.length === 1 ? describe(item.parts[0].feedback) : `feedback on ${given} of ${item.parts.length}`),
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
  }
  return li;
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
  render();
});
