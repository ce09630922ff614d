/* The picture under an answer with a box over each glyph or line it read (drawBoxes, also used for
 * drawn sequences and lines of text), and the page-reading UI: a page answer's lines, correcting a
 * glyph by clicking its box, and the magnifier that answers a finger on boxes smaller than it.
 * Every text shown is the server's; a correction edits that text in place. */

import { errorMessage, postFeedback } from "./api.js";
import { noteFeedback } from "./history.js";
import { $, element, percent, plural } from "./util.js";

const boxesView = $("boxes-view");
const boxesNote = $("boxes-note");
const boxedImage = $("boxed-image");
const boxedPicture = $("boxed-picture");
const boxes = $("boxes");
const legend = $("legend");
const lineList = $("line-list");
const annotatedLink = $("download-annotated");
const pageFix = $("page-fix");
const pageFixLabel = $("page-fix-label");
const pageFixQuestion = $("page-fix-question");
const pageStatus = $("page-status");
const loupe = $("loupe");
const loupeView = $("loupe-view");
const loupePage = $("loupe-page");
const loupePicture = $("loupe-picture");
const loupeBoxes = $("loupe-boxes");

const TAP_PX = 44; // WCAG target size: page boxes shown smaller than this get the magnifier on touch
const LOUPE_GLYPH_PX = 64; // the magnifier shows the page's typical glyph this tall

/** What this part of the page remembers. */
const view = {
  answer: null, // the page answer on screen ({data, kind: "page", key, texts, text()}), or null
  fixing: null, // index of the page glyph being corrected
  saving: false, // a correction is on its way to the server
  lastPointer: "mouse", // a click made by Enter or Space carries no pointer type of its own
};

// ---------------------------------------------------------------- boxes over the picture

/** Boxes over ``picture`` (percentages of the answer's image size): one per glyph or line. */
export function drawBoxes(data, items, picture, label, onClick) {
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

/** Empty the picture, the page's correction form and the magnifier (the result area is cleared). */
export function clearPage() {
  view.answer = null;
  view.fixing = null;
  boxes.replaceChildren();
  boxedPicture.removeAttribute("src");
  pageFix.hidden = true;
  loupe.hidden = true;
  loupeBoxes.replaceChildren();
  loupePicture.removeAttribute("src");
  pageStatus.textContent = "";
  legend.hidden = true;
}

// ---------------------------------------------------------------- a page answer

/**
 * Show a page answer read from ``from``; ``keep`` puts it in the history (its key returned) and
 * ``setStatus`` says what was read. Returns the answer on screen, for copy and downloads.
 */
export function showPage(data, from, { keep, setStatus }) {
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
      head.append(element("span", "line-number", String(r + 1)), element("span", "line-text", line.text), element("span", "line-confidence", `${percent(line.confidence)} confident`));
      li.append(head);
      return li;
    }),
  );
  view.answer = { data, kind: "page", key, texts, text: () => texts.join("\n") };
  const count = data.glyphs.length;
  setStatus(data.message || `Read ${plural(count, "character")} on ${plural(data.lines.length, "line")}.`);
  return view.answer;
}

function startFix(i) {
  if (!view.answer || i < 0 || !view.answer.data.glyphs[i].prediction_id) return;
  view.fixing = i;
  view.answer.data.glyphs.forEach((_, k) => markBox(k, "selected", k === i));
  pageFixQuestion.textContent = `Read as “${view.answer.data.glyphs[i].predicted}”. Right answer`;
  pageFix.hidden = false;
  pageFixLabel.value = "";
  if (loupe.hidden) return pageFixLabel.focus();
  pageFixLabel.focus({ preventScroll: true }); // keep the magnifier in view above the form
  loupe.scrollIntoView({ block: "nearest" });
  pageFix.scrollIntoView({ block: "nearest" });
}

function closeFix() {
  const at = view.fixing;
  pageFix.hidden = true;
  view.fixing = null;
  if (view.answer) view.answer.data.glyphs.forEach((_, k) => markBox(k, "selected", false));
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

function medianHeight(glyphs) {
  const heights = glyphs.map((g) => g.h).sort((a, b) => a - b);
  return heights[Math.floor(heights.length / 2)] || 1;
}

boxes.addEventListener("pointerdown", (event) => {
  view.lastPointer = event.pointerType;
});

/** A finger's tap on a page whose boxes are smaller than a fingertip: the magnifier answers it. */
function needsLoupe(event) {
  if (!view.answer || event.detail === 0) return false; // keyboard: the box itself
  if ((event.pointerType || view.lastPointer) !== "touch") return false;
  const scale = boxedPicture.getBoundingClientRect().height / view.answer.data.image.height;
  return medianHeight(view.answer.data.glyphs) * scale < TAP_PX;
}

/** The point of ``event`` in the answer's image pixels, on ``layer`` (the page or the magnifier). */
function imagePoint(event, layer) {
  const r = layer.getBoundingClientRect();
  const { width: W, height: H } = view.answer.data.image;
  return [((event.clientX - r.left) / r.width) * W, ((event.clientY - r.top) / r.height) * H];
}

/** The correctable glyph whose box is nearest to (x, y); inside two boxes, the nearer centre. */
function nearestGlyph(x, y) {
  let best = -1;
  let bestCost = Infinity;
  view.answer.data.glyphs.forEach((g, i) => {
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
  const { width: W, height: H } = view.answer.data.image;
  const zoom = LOUPE_GLYPH_PX / medianHeight(view.answer.data.glyphs); // CSS pixels per image pixel
  loupePage.style.width = `${Math.round(W * zoom)}px`;
  loupePage.style.height = `${Math.round(H * zoom)}px`;
  loupe.hidden = false;
  loupeView.scrollLeft = x * zoom - loupeView.clientWidth / 2;
  loupeView.scrollTop = y * zoom - loupeView.clientHeight / 2;
}

function closeLoupe() {
  const at = view.fixing;
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
  if (view.answer) startFix(nearestGlyph(...imagePoint(event, loupePage)));
});
$("loupe-close").addEventListener("click", closeLoupe);
loupe.addEventListener("keydown", (event) => {
  if (event.key === "Escape") closeLoupe();
});

// ---------------------------------------------------------------- saving a correction

function pageSays(message, kind) {
  pageStatus.textContent = message;
  pageStatus.classList.toggle("error", kind === "error");
}

/** Glyph ``i`` now reads ``label``: its text is replaced where the answer says it stands in its
 * line's text (``offset``; the server's text, edited in place). */
function replaceGlyph(about, i, label) {
  const g = about.data.glyphs[i];
  const text = about.texts[g.line];
  about.texts[g.line] = text.slice(0, g.offset) + label + text.slice(g.offset + g.text.length);
  g.text = label;
  const row = lineList.children[g.line];
  if (row) row.querySelector(".line-text").textContent = about.texts[g.line];
}

pageFix.addEventListener("submit", async (event) => {
  event.preventDefault();
  if (view.fixing === null || !view.answer || view.saving) return;
  const about = view.answer; // the answer and glyph this correction is for, whatever happens meanwhile
  const index = view.fixing;
  const glyph = about.data.glyphs[index];
  const label = pageFixLabel.value.trim();
  if (!label) return pageSays("Type the character that is written there.", "error");
  const correct = label === glyph.predicted; // always against what the engine read, not an earlier fix
  view.saving = true;
  const { response, body: reply } = await postFeedback({ prediction_id: glyph.prediction_id, correct, label: correct ? undefined : label });
  view.saving = false;
  if (view.answer !== about) return; // another answer is on screen now
  if (!response) return pageSays("Could not reach the server; the correction was not saved.", "error");
  if (!response.ok || !reply || reply.status !== "saved") {
    pageSays(errorMessage(response, reply), "error");
    if (view.fixing === index) pageFixLabel.focus();
    return;
  }
  replaceGlyph(about, index, label);
  markBox(index, "fixed", !correct);
  noteFeedback(about.key, glyph.prediction_id, { correct, label: correct ? null : label });
  pageSays(correct ? `Saved: “${label}” was read right.` : `Saved: it is “${label}”.`);
  if (view.fixing === index) closeFix();
});

$("page-fix-cancel").addEventListener("click", closeFix);
pageFixLabel.addEventListener("keydown", (event) => {
  if (event.key === "Escape") {
    event.preventDefault();
    closeFix();
  }
});
