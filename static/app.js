/* Handwriting recognition page: drawing canvas, upload, and result display.
 *
 * Plain JavaScript, no build step. The browser only collects ink and shows answers: every bit of
 * image preparation happens on the server, which receives the canvas as a PNG (black ink on white).
 */
(() => {
  "use strict";

  const SIZE = 280; // logical canvas side for one character: stroke coordinates live in 0..SIZE
  const LINE_SIZE = [840, 240]; // the wide writing area of the "line" task
  const LINE_PEN = 6; // its pen width to begin with, in canvas pixels
  const LIVE_DELAY_MS = 150; // live prediction waits this long after the last stroke ends
  const INK = "#000000";
  const PAPER = "#ffffff";

  const $ = (id) => document.getElementById(id);
  const canvas = $("canvas");
  const ctx = canvas.getContext("2d");
  const penWidth = $("pen-width");
  const penWidthValue = $("pen-width-value");
  const undoButton = $("undo");
  const clearButton = $("clear");
  const predictButton = $("predict");
  const fileInput = $("file-input");
  const dropZone = $("drop-zone");
  const preview = $("upload-preview");
  const statusBox = $("status");
  const resultPanel = $("result-panel");
  const resultEmpty = $("result-empty");
  const resultText = $("result-text");
  const resultConfidence = $("result-confidence");
  const resultNote = $("result-note");
  const candidatesHeading = $("candidates-heading");
  const candidatesList = $("candidates");
  const seen = $("seen");
  const seenImage = $("input-28");
  const modelInfo = $("model-info");
  const feedbackBox = $("feedback");
  const feedbackYes = $("feedback-yes");
  const feedbackNo = $("feedback-no");
  const feedbackForm = $("feedback-form");
  const feedbackLabel = $("feedback-label");
  const feedbackStatus = $("feedback-status");
  const asPage = $("as-page");
  const pageEngine = $("page-engine");
  const pagePanel = $("page-panel");
  const pageImage = $("page-annotated");
  const pageBoxes = $("page-boxes");
  const pageText = $("page-text");
  const pageFix = $("page-fix");
  const pageFixLabel = $("page-fix-label");
  const pageFixQuestion = $("page-fix-question");
  const pageStatus = $("page-status");
  const layout = document.querySelector("main");
  const maxUploadBytes = Number(layout.dataset.maxUploadBytes) || Infinity;
  const maxUploadMb = layout.dataset.maxUploadMb || "";

  /** @type {{width: number, points: number[][]}[]} */
  let strokes = [];
  let current = null; // the stroke being drawn
  let activePointer = null; // only one pointer draws at a time
  let scale = 1; // backing-store pixels per logical unit
  let W = SIZE; // logical canvas width and height (wide for lines)
  let H = SIZE;
  let renderQueued = false;
  let liveTimer = 0;
  let requestSeq = 0; // id of the latest request; older answers are dropped
  let inflight = null; // AbortController of the latest request
  let lastSource = null; // "canvas" or {file}: what a task change re-reads
  let previewUrl = null;
  let answered = null; // {id, predicted}: the answer the Yes/No buttons are about

  // ---------------------------------------------------------------- drawing

  function setupCanvas() {
    const dpr = Math.min(Math.max(window.devicePixelRatio || 1, 1), 3);
    const width = Math.round(W * dpr);
    const height = Math.round(H * dpr);
    if (canvas.width !== width || canvas.height !== height || scale !== width / W) {
      canvas.width = width;
      canvas.height = height;
      scale = width / W;
    }
    render();
  }

  function render() {
    renderQueued = false;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = PAPER;
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.setTransform(scale, 0, 0, scale, 0, 0);
    for (const stroke of strokes) drawStroke(stroke);
    if (current) drawStroke(current);
  }

  function queueRender() {
    if (!renderQueued) {
      renderQueued = true;
      requestAnimationFrame(render);
    }
  }

  // A stroke is drawn as quadratic curves through the midpoints of its samples, which smooths
  // the corners between pointer events without lagging behind the pen.
  function drawStroke(stroke) {
    const pts = stroke.points;
    if (!pts.length) return;
    ctx.strokeStyle = INK;
    ctx.fillStyle = INK;
    ctx.lineWidth = stroke.width;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    if (pts.length === 1) {
      ctx.beginPath();
      ctx.arc(pts[0][0], pts[0][1], stroke.width / 2, 0, Math.PI * 2);
      ctx.fill();
      return;
    }
    ctx.beginPath();
    ctx.moveTo(pts[0][0], pts[0][1]);
    for (let i = 1; i < pts.length - 1; i++) {
      const mx = (pts[i][0] + pts[i + 1][0]) / 2;
      const my = (pts[i][1] + pts[i + 1][1]) / 2;
      ctx.quadraticCurveTo(pts[i][0], pts[i][1], mx, my);
    }
    const last = pts[pts.length - 1];
    ctx.lineTo(last[0], last[1]);
    ctx.stroke();
  }

  // Pointer position in logical canvas units, correct however CSS scales the canvas.
  function toCanvas(event) {
    const rect = canvas.getBoundingClientRect();
    const x = ((event.clientX - rect.left) / rect.width) * W;
    const y = ((event.clientY - rect.top) / rect.height) * H;
    return [Math.round(x * 10) / 10, Math.round(y * 10) / 10];
  }

  function addPoint(event) {
    const p = toCanvas(event);
    const pts = current.points;
    const prev = pts[pts.length - 1];
    if (!prev || Math.abs(prev[0] - p[0]) + Math.abs(prev[1] - p[1]) >= 0.5) pts.push(p);
  }

  canvas.addEventListener("pointerdown", (event) => {
    if (activePointer !== null) return;
    if (event.pointerType === "mouse" && event.button !== 0) return;
    event.preventDefault();
    activePointer = event.pointerId;
    try {
      canvas.setPointerCapture(event.pointerId);
    } catch (_) {
      /* the pointer may already be gone */
    }
    clearTimeout(liveTimer);
    current = { width: Number(penWidth.value), points: [] };
    addPoint(event);
    queueRender();
  });

  canvas.addEventListener("pointermove", (event) => {
    if (event.pointerId !== activePointer || !current) return;
    event.preventDefault();
    const events = typeof event.getCoalescedEvents === "function" ? event.getCoalescedEvents() : [];
    for (const e of events.length ? events : [event]) addPoint(e);
    queueRender();
  });

  function endStroke(event) {
    if (event.pointerId !== activePointer) return;
    activePointer = null;
    if (!current) return;
    if (event.type === "pointerup") addPoint(event);
    strokes.push(current);
    current = null;
    render();
    updateButtons();
    lastSource = "canvas";
    scheduleLive();
  }

  canvas.addEventListener("pointerup", endStroke);
  canvas.addEventListener("pointercancel", endStroke);
  canvas.addEventListener("lostpointercapture", endStroke);
  canvas.addEventListener("contextmenu", (event) => event.preventDefault());

  function updateButtons() {
    undoButton.disabled = strokes.length === 0;
  }

  function scheduleLive() {
    clearTimeout(liveTimer);
    liveTimer = setTimeout(predictCanvas, LIVE_DELAY_MS);
  }

  function undo() {
    if (!strokes.length) return;
    strokes.pop();
    render();
    updateButtons();
    if (strokes.length) {
      lastSource = "canvas";
      scheduleLive();
    } else {
      resetAll();
    }
  }

  function clearCanvas() {
    strokes = [];
    current = null;
    render();
    updateButtons();
    resetAll();
  }

  // Forget the canvas answer: cancel what is pending so a late reply cannot reappear.
  function resetAll() {
    clearTimeout(liveTimer);
    cancelRequest();
    lastSource = null;
    clearResult();
    setStatus("");
  }

  // ---------------------------------------------------------------- requests

  function selectedTask() {
    const checked = document.querySelector('input[name="task"]:checked');
    const first = document.querySelector('input[name="task"]');
    return (checked || first || { value: "digit" }).value;
  }

  function predictCanvas() {
    clearTimeout(liveTimer);
    if (!strokes.length) {
      cancelRequest();
      clearResult();
      setStatus("Draw something first.", "error");
      return;
    }
    lastSource = "canvas";
    hidePreview(); // the answer will be about the drawing, not the last upload
    send("/submit", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({
        image: canvas.toDataURL("image/png"),
        task: selectedTask(),
        ...profileField(),
        ...alphabetField(),
        ...correctField(),
      }),
    });
  }

  const alphabetPick = $("alphabet-pick");
  const alphabetSelect = $("alphabet-select");

  /** The alphabet hint as a request field: only the character task takes one ({} for "any"). */
  function alphabetField() {
    return selectedTask() === "character" && alphabetSelect.value !== "any" ? { alphabet: alphabetSelect.value } : {};
  }

  function showAlphabetPick() {
    alphabetPick.hidden = selectedTask() !== "character";
    correctPick.hidden = selectedTask() !== "line";
  }

  const correctPick = $("correct-pick");
  const correctSpelling = $("correct-spelling");

  /** The line task's spelling switch as a request field ({} when on, the server's default). */
  function correctField() {
    return selectedTask() === "line" && !correctSpelling.checked ? { correct: "false" } : {};
  }

  const profileSelect = $("profile-select");

  /** The chosen profile as a request field ({} for the standard model). */
  function profileField() {
    return profileSelect.value ? { profile: profileSelect.value } : {};
  }

  function uploadFile(file) {
    if (!file) return;
    clearTimeout(liveTimer);
    if (file.size > maxUploadBytes) {
      cancelRequest();
      clearResult();
      const mb = (file.size / 1024 / 1024).toFixed(1);
      setStatus(`That file is ${mb} MB; the limit is ${maxUploadMb} MB.`, "error");
      return;
    }
    showPreview(file);
    lastSource = { file };
    const form = new FormData();
    form.append("file", file, file.name || "image");
    if (asPage.checked) {
      const [kind, name, engine] = pageEngine.value.split(":"); // "cnn", "hog" or "personal:<name>:<engine>"
      form.append("task", "page");
      // a page's alphabet names what it holds: digits, or characters (optionally only letters, capitals...)
      const hint = alphabetField().alphabet;
      form.append("alphabet", kind === "personal" ? "digit" : hint || selectedTask());
      form.append("engine", kind === "personal" ? engine : kind);
      if (kind === "personal") form.append("profile", name);
      else if (profileSelect.value && kind === "cnn") form.append("profile", profileSelect.value);
    } else {
      form.append("task", selectedTask());
      if (profileSelect.value) form.append("profile", profileSelect.value);
      Object.entries({ ...alphabetField(), ...correctField() }).forEach(([k, v]) => form.append(k, v));
    }
    send("/upload", { method: "POST", headers: { Accept: "application/json" }, body: form });
  }

  function cancelRequest() {
    requestSeq += 1;
    if (inflight) inflight.abort();
    inflight = null;
    setBusy(false);
  }

  async function send(url, options) {
    cancelRequest();
    const id = requestSeq;
    const controller = new AbortController();
    inflight = controller;
    setBusy(true);
    let response;
    let body = null;
    try {
      response = await fetch(url, { ...options, signal: controller.signal });
      body = await response.json().catch(() => null);
    } catch (_) {
      if (id === requestSeq) {
        setBusy(false);
        clearResult();
        setStatus("Could not reach the server. Check the connection and try again.", "error");
      }
      return;
    }
    if (id !== requestSeq) return; // a newer request was made: this answer is stale
    inflight = null;
    setBusy(false);
    if (!response.ok || !body || body.error || typeof body.text !== "string") {
      clearResult();
      setStatus(errorMessage(response, body), "error");
      return;
    }
    if (body.task === "page") showPage(body);
    else if (body.task === "line") showLine(body);
    else showResult(body);
  }

  function errorMessage(response, body) {
    const message = body && body.error && typeof body.error.message === "string" ? body.error.message : "";
    if (message) return message;
    if (response.status === 413) return `The upload is too large; the limit is ${maxUploadMb} MB.`;
    if (response.status >= 500) return "Something went wrong on the server; please try again.";
    return `The request failed (HTTP ${response.status}); please try again.`;
  }

  // ---------------------------------------------------------------- results

  function percent(p) {
    const v = Math.max(0, Math.min(1, Number(p) || 0)) * 100;
    if (v > 0 && v < 0.1) return "<0.1%";
    if (v < 100 && v >= 99.95) return ">99.9%";
    return `${v.toFixed(1)}%`;
  }

  function quoteList(labels) {
    const q = labels.map((l) => `“${l}”`);
    return q.length > 1 ? `${q.slice(0, -1).join(", ")} and ${q[q.length - 1]}` : q.join("");
  }

  function showResult(data) {
    pagePanel.hidden = true;
    resultEmpty.hidden = true;
    const best = Array.isArray(data.candidates) && data.candidates.length ? data.candidates[0].label : "";
    const alikes = Array.isArray(data.lookalikes) ? data.lookalikes : [];
    if (data.unsure) {
      resultText.textContent = "?";
      resultConfidence.textContent = "Not sure";
      resultNote.textContent = `${data.message || "Not sure."} Best guess: “${best}” (${percent(data.confidence)}).`;
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
      const li = document.createElement("li");
      li.className = i === 0 ? "candidate top" : "candidate";
      const label = document.createElement("span");
      label.className = "candidate-label";
      label.textContent = c.label;
      const track = document.createElement("span");
      track.className = "candidate-track";
      track.setAttribute("aria-hidden", "true");
      const bar = document.createElement("span");
      bar.className = "candidate-bar";
      bar.style.width = `${(p * 100).toFixed(2)}%`;
      track.append(bar);
      const prob = document.createElement("span");
      prob.className = "candidate-prob";
      prob.textContent = percent(p);
      li.append(label, track, prob);
      return li;
    });
    candidatesList.replaceChildren(...items);
    candidatesHeading.hidden = items.length === 0;

    if (typeof data.input_28x28 === "string" && data.input_28x28.startsWith("data:image/")) {
      seenImage.src = data.input_28x28;
      seen.hidden = false;
    } else {
      seen.hidden = true;
    }
    showFeedback(data);
    const model = data.model || {};
    // "yours" is decided by a calibrated threshold, not by the largest probability: no percentage for it
    const w = data.writer || {};
    const writer = w.label ? ` · writer: ${w.label}${w.label === "yours" ? "" : ` (${percent(w.probability)})`}` : "";
    modelInfo.textContent = model.name ? `Model: ${model.name}${model.version ? ` · version ${model.version}` : ""}${writer}` : "";
    setStatus(data.unsure ? data.message || "Not sure." : `Read “${data.text}”, ${percent(data.confidence)} confident.`);
  }

  function showLine(data) {
    clearResult();
    resultEmpty.hidden = true;
    resultText.classList.add("line");
    data.lines.forEach((line, i) => {
      if (i) resultText.append("\n");
      resultText.append(...lineWords(line));
    });
    resultConfidence.textContent = `${percent(data.confidence)} confident`;
    const notes = [];
    if (data.lines.some((l) => (l.corrections || []).length))
      notes.push("Underlined words were corrected: click one to put back what was written.");
    if (data.dropped && data.dropped.length) {
      const n = data.dropped.length;
      notes.push(`Left out ${n} line${n === 1 ? "" : "s"} that did not look handwritten (printed, ruled or cut off).`);
    }
    if (data.message) notes.push(data.message);
    resultNote.textContent = notes.join(" ");
    resultNote.hidden = !resultNote.textContent;
    const first = data.lines.length ? data.lines[0] : null;
    showFeedback(first ? { prediction_id: first.prediction_id, candidates: [{ label: first.text }] } : null, 300);
    const model = data.model || {};
    modelInfo.textContent = model.name ? `Model: ${model.name} · version ${model.version}` : "";
    setStatus(`Read ${data.lines.length} line${data.lines.length === 1 ? "" : "s"}.`);
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
      const button = document.createElement("button");
      button.type = "button";
      button.className = "corrected-word";
      button.textContent = change.corrected;
      button.title = `Read as “${change.raw}”; click to use that`;
      button.addEventListener("click", () => {
        const raw = button.textContent === change.corrected;
        button.textContent = raw ? change.raw : change.corrected;
        button.title = raw ? `Corrected to “${change.corrected}”; click to use that` : `Read as “${change.raw}”; click to use that`;
      });
      nodes.push(button);
      last = m.index + m[0].length;
    }
    nodes.push(line.text.slice(last));
    return nodes;
  }

  function clearResult() {
    resultText.classList.remove("line");
    resultEmpty.hidden = false;
    resultText.textContent = "";
    resultConfidence.textContent = "";
    resultNote.textContent = "";
    resultNote.hidden = true;
    candidatesList.replaceChildren();
    candidatesHeading.hidden = true;
    seen.hidden = true;
    seenImage.removeAttribute("src");
    modelInfo.textContent = "";
    showFeedback(null);
    pagePanel.hidden = true;
  }

  // ---------------------------------------------------------------- pages

  let page = null; // the page answer on screen
  let fixing = null; // index of the glyph being corrected

  function pageTextOf(data) {
    const rows = data.lines.map(() => "");
    let previous = null;
    data.glyphs.forEach((g) => {
      if (previous && previous.line === g.line && g.space_before) rows[g.line] += " ";
      rows[g.line] += g.text;
      previous = g;
    });
    return rows.join("\n");
  }

  function showPage(data) {
    clearResult();
    data.glyphs.forEach((g) => {
      g.predicted = g.text; // what the engine read; corrections are compared with this
    });
    page = data;
    fixing = null;
    pageFix.hidden = true;
    pageStatus.textContent = "";
    pageText.textContent = data.text;
    pageImage.src = data.annotated_png;
    $("page-download-annotated").href = data.annotated_png;
    $("page-download-rendering").href = data.rendering_png;
    const w = data.image.width;
    const h = data.image.height;
    pageBoxes.replaceChildren(
      ...data.glyphs.map((g, i) => {
        const box = document.createElement("button");
        box.type = "button";
        box.className = "page-box";
        box.style.left = `${(g.x / w) * 100}%`;
        box.style.top = `${(g.y / h) * 100}%`;
        box.style.width = `${(g.w / w) * 100}%`;
        box.style.height = `${(g.h / h) * 100}%`;
        box.setAttribute("aria-label", `Read as “${g.text}”, ${percent(g.confidence)}. Correct it`);
        box.addEventListener("click", () => startFix(i));
        return box;
      }),
    );
    pagePanel.hidden = false;
    const count = data.glyphs.length;
    setStatus(data.message || `Read ${count} character${count === 1 ? "" : "s"} on ${data.lines.length} line${data.lines.length === 1 ? "" : "s"}.`);
  }

  function startFix(i) {
    if (!page || !page.glyphs[i].prediction_id) return;
    fixing = i;
    pageBoxes.querySelectorAll(".page-box").forEach((b, k) => b.classList.toggle("selected", k === i));
    pageFixQuestion.textContent = `Read as “${page.glyphs[i].predicted}”. Right answer`;
    pageFix.hidden = false;
    pageFixLabel.value = "";
    pageFixLabel.focus();
  }

  let fixSaving = false;
  pageFix.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (fixing === null || !page || fixSaving) return;
    const about = page; // the answer and glyph this correction is for, whatever happens meanwhile
    const index = fixing;
    const glyph = about.glyphs[index];
    const label = pageFixLabel.value.trim();
    if (!label) {
      pageStatus.textContent = "Type the character that is written there.";
      pageStatus.classList.add("error");
      return;
    }
    const correct = label === glyph.predicted; // always against what the engine read, not an earlier fix
    fixSaving = true;
    const { response, body: reply } = await postFeedback({
      prediction_id: glyph.prediction_id,
      correct,
      label: correct ? undefined : label,
    });
    fixSaving = false;
    if (page !== about) return; // another page is on screen now
    if (!response) {
      pageStatus.textContent = "Could not reach the server; the correction was not saved.";
      pageStatus.classList.add("error");
      return;
    }
    if (!response.ok || !reply || reply.status !== "saved") {
      pageStatus.textContent = errorMessage(response, reply);
      pageStatus.classList.add("error");
      if (fixing === index) pageFixLabel.focus();
      return;
    }
    pageStatus.classList.remove("error");
    glyph.text = label;
    pageText.textContent = pageTextOf(about);
    pageBoxes.children[index].classList.toggle("fixed", !correct);
    pageStatus.textContent = correct ? `Saved: “${label}” was read right.` : `Saved: it is “${label}”.`;
    if (fixing === index) {
      pageFix.hidden = true;
      fixing = null;
    }
  });

  $("page-fix-cancel").addEventListener("click", () => {
    pageFix.hidden = true;
    fixing = null;
    pageBoxes.querySelectorAll(".page-box").forEach((b) => b.classList.remove("selected"));
  });

  $("page-copy").addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(pageText.textContent);
      pageStatus.textContent = "Text copied.";
    } catch (_) {
      const range = document.createRange();
      range.selectNodeContents(pageText);
      window.getSelection().removeAllRanges();
      window.getSelection().addRange(range);
      pageStatus.textContent = "Select and copy the text above.";
    }
  });

  // ---------------------------------------------------------------- personal sheet

  let sheetId = null;
  const sheetStatus = $("sheet-status");

  function sheetMessage(message, kind) {
    sheetStatus.textContent = message;
    sheetStatus.classList.toggle("error", kind === "error");
  }

  function postFeedback(body) {
    return postJson("/feedback", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
    });
  }

  async function postJson(url, options) {
    try {
      const response = await fetch(url, options);
      const body = await response.json().catch(() => null);
      return { response, body };
    } catch (_) {
      return { response: null, body: null };
    }
  }

  async function loadProfiles() {
    const { response, body } = await postJson("/personal/profiles", { headers: { Accept: "application/json" } });
    if (!response || !response.ok || !body || !Array.isArray(body.profiles)) return;
    const chosen = profileSelect.value;
    profileSelect.querySelectorAll("option[value]:not([value=''])").forEach((o) => o.remove());
    body.profiles.forEach((p) => {
      const option = document.createElement("option");
      option.value = p.name;
      const taught = Object.entries(p.tasks || {}).map(([task, t]) => `${task} ${t.labels.join("")}`);
      if (p.sheet) taught.push("digit sheet");
      option.textContent = `${p.name} (${taught.join("; ")})`;
      profileSelect.append(option);
    });
    if ([...profileSelect.options].some((o) => o.value === chosen)) profileSelect.value = chosen;
  }

  profileSelect.addEventListener("change", () => {
    if (lastSource === "canvas") predictCanvas();
    else if (lastSource && lastSource.file) uploadFile(lastSource.file);
  });

  async function loadPersonal() {
    loadProfiles();
    const { response, body } = await postJson("/sheet/models", { headers: { Accept: "application/json" } });
    if (!response || !response.ok || !Array.isArray(body)) return;
    pageEngine.querySelectorAll("option[data-personal]").forEach((o) => o.remove());
    body.forEach((m) => {
      (m.engines || []).forEach((engine) => {
        const option = document.createElement("option");
        option.value = `personal:${m.name}:${engine}`;
        option.dataset.personal = "1";
        option.textContent = `Personal: ${m.name} (${engine === "cnn" ? "neural network" : "HOG + SVM"})`;
        pageEngine.append(option);
      });
    });
  }

  $("sheet-check").addEventListener("click", async () => {
    const file = $("sheet-file").files[0];
    if (!file) {
      sheetMessage("Choose a photo or scan of your sheet first.", "error");
      return;
    }
    const form = new FormData();
    form.append("file", file, file.name || "sheet");
    sheetMessage("Checking the sheet…");
    const { response, body } = await postJson("/sheet/check", { method: "POST", body: form });
    if (!response || !response.ok || !body || !body.sheet_id) {
      $("sheet-result").hidden = true;
      sheetMessage(response ? errorMessage(response, body) : "Could not reach the server.", "error");
      return;
    }
    sheetId = body.sheet_id;
    $("sheet-annotated").src = body.annotated_png;
    $("sheet-summary").textContent =
      `Found ${body.glyphs} digits in 10 rows: ` + body.rows.map((r) => `${r.count}×${r.label}`).join(", ") +
      ". Check that every box carries the digit you wrote, then train.";
    $("sheet-result").hidden = false;
    sheetMessage("");
  });

  $("sheet-train").addEventListener("click", async () => {
    if (!sheetId) return;
    sheetMessage("Training your models; this takes about a minute…");
    $("sheet-train").disabled = true;
    const { response, body } = await postJson("/sheet/train", {
      method: "POST",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        Authorization: `Bearer ${$("sheet-token").value}`,
      },
      body: JSON.stringify({ sheet_id: sheetId, name: $("sheet-name").value.trim() }),
    });
    $("sheet-train").disabled = false;
    if (!response || !response.ok || !body || !body.metrics) {
      sheetMessage(response ? errorMessage(response, body) : "Could not reach the server.", "error");
      return;
    }
    const acc = body.metrics.held_out_accuracy;
    sheetMessage(
      `Trained “${body.name}”. On ${body.samples.held_out} of your digits kept aside: ` +
        Object.entries(acc).map(([k, v]) => `${k} ${percent(v)}`).join(", ") +
        ". Choose it under Engine to read pages with it.",
    );
    await loadPersonal();
  });

  // ---------------------------------------------------------------- teaching one sample

  const STEP_NAMES = {
    queued: "Waiting for the teach before yours…",
    prepare: "Preparing your sample",
    augment: "Making variants of it (rotation, scale, stroke, elastic, blur…)",
    vae: "Training the VAE and sampling new versions",
    adapt: "Adapting the model to your writing",
    writer: "Training the writer classifier",
    pictures: "Drawing the pictures",
    done: "Done",
  };
  const PICTURE_TITLES = {
    variants: "Augmented variants",
    vae_samples: "VAE samples",
    reconstruction: "Your sample and its VAE reconstruction",
    latent_map: "The latent map",
    feature_maps: "What the first convolution layers see",
  };
  const teachStatus = $("teach-status");
  const teachStep = $("teach-step");
  const teachProgress = $("teach-progress");
  const tokenKey = (name) => `hwr-profile-token:${name}`;

  function teachMessage(message, kind) {
    teachStatus.textContent = message;
    teachStatus.classList.toggle("error", kind === "error");
  }

  for (const radio of document.querySelectorAll('input[name="teach-mode"]')) {
    radio.addEventListener("change", () => {
      const sheet = document.querySelector('input[name="teach-mode"]:checked').value === "sheet";
      $("teach-sheet").hidden = !sheet;
      $("teach-sample").hidden = sheet;
    });
  }

  $("teach-profile").addEventListener("change", () => {
    const saved = localStorage.getItem(tokenKey($("teach-profile").value.trim()));
    if (saved) $("teach-token").value = saved;
  });

  function showTeachResult(job) {
    const r = job.result;
    const m = r.metrics || {};
    const guard = m.guard || {};
    $("teach-summary").textContent =
      `Profile “${job.profile}” now knows your ${r.labels.map((l) => `“${l}”`).join(", ")} (${job.task}, version ${r.version}, ` +
      `${r.seconds} s). ` +
      (r.promoted
        ? `The adapted model reads the standard test sample at ${percent(guard.personal)} (standard model ${percent(guard.base)}). `
        : "The adapted model did not measure at least as well as the standard one, so the standard one keeps reading for this profile. ") +
      `Choose “${job.profile}” under Profile to read with it.`;
    const drawn = (job.pictures || {})[job.label] || {};
    const figures = Object.keys(PICTURE_TITLES).filter((name) => drawn[name]).map((name) => {
      const url = drawn[name];
      const figure = document.createElement("figure");
      const img = document.createElement("img");
      img.src = url;
      img.alt = PICTURE_TITLES[name] || name;
      img.dataset.picture = name;
      const caption = document.createElement("figcaption");
      const link = document.createElement("a");
      link.href = `${url}?download=1`;
      link.textContent = "Download PNG";
      caption.append(`${PICTURE_TITLES[name] || name} · `, link);
      figure.append(img, caption);
      return figure;
    });
    $("teach-pictures").replaceChildren(...figures);
    $("teach-results").hidden = false;
  }

  async function followJob(url) {
    for (;;) {
      const { response, body } = await postJson(url, { headers: { Accept: "application/json" } });
      if (!response || !response.ok || !body) {
        teachMessage(response ? errorMessage(response, body) : "Lost touch with the server.", "error");
        return null;
      }
      teachProgress.value = Number(body.progress) || 0;
      const eta = body.eta_s > 0 && body.state !== "done" ? ` (about ${Math.ceil(body.eta_s)} s left)` : "";
      teachStep.textContent = `${STEP_NAMES[body.step] || body.step}${eta}`;
      if (body.state === "done") return body;
      if (body.state === "failed") {
        teachMessage(`Teaching failed: ${body.error || "unknown error"}`, "error");
        return null;
      }
      await new Promise((resolve) => setTimeout(resolve, 700));
    }
  }

  $("teach-start").addEventListener("click", async () => {
    const label = $("teach-label").value;
    const name = $("teach-profile").value.trim();
    const file = $("teach-file").files[0];
    if (!label) return teachMessage("Type the character your sample is.", "error");
    if (!/^[a-z0-9_-]{1,40}$/.test(name)) return teachMessage("Name the profile with lower-case letters, digits, - or _.", "error");
    if (!file && !strokes.length) return teachMessage("Draw the character in the box first, or choose a picture.", "error");
    const token = $("teach-token").value || localStorage.getItem(tokenKey(name)) || "";
    const headers = { Accept: "application/json", ...(token ? { "X-Profile-Token": token } : {}) };
    let options;
    if (file) {
      const form = new FormData();
      form.append("file", file, file.name || "sample");
      Object.entries({ task: selectedTask(), label, profile: name }).forEach(([k, v]) => form.append(k, v));
      options = { method: "POST", headers, body: form };
    } else {
      const body = { image: canvas.toDataURL("image/png"), task: selectedTask(), label, profile: name };
      options = { method: "POST", headers: { ...headers, "Content-Type": "application/json" }, body: JSON.stringify(body) };
    }
    $("teach-start").disabled = true;
    $("teach-results").hidden = true;
    teachMessage("");
    const { response, body } = await postJson("/personal/teach", options);
    if (!response || response.status !== 202 || !body) {
      $("teach-start").disabled = false;
      const wait = response && response.status === 429 ? ` Try again in ${response.headers.get("Retry-After")} s.` : "";
      return teachMessage((response ? errorMessage(response, body) : "Could not reach the server.") + wait, "error");
    }
    if (body.profile_token) {
      localStorage.setItem(tokenKey(name), body.profile_token);
      $("teach-token").value = body.profile_token;
      teachMessage(`New profile “${name}”. Its token (kept in this browser) lets you add to it or delete it: ${body.profile_token}`);
    }
    $("teach-progress-box").hidden = false;
    teachProgress.value = 0;
    teachStep.textContent = STEP_NAMES.queued;
    const job = await followJob(body.status_url);
    $("teach-start").disabled = false;
    if (job) {
      showTeachResult(job);
      await loadProfiles();
    }
  });

  $("teach-delete").addEventListener("click", async () => {
    const name = $("teach-profile").value.trim();
    if (!name) return teachMessage("Type the name of the profile to delete.", "error");
    const token = $("teach-token").value || localStorage.getItem(tokenKey(name)) || "";
    const { response, body } = await postJson(`/personal/profiles/${encodeURIComponent(name)}`, {
      method: "DELETE",
      headers: { Accept: "application/json", "X-Profile-Token": token },
    });
    if (!response || !response.ok) return teachMessage(response ? errorMessage(response, body) : "Could not reach the server.", "error");
    localStorage.removeItem(tokenKey(name));
    $("teach-results").hidden = true;
    teachMessage(`Deleted profile “${name}” and every file of it.`);
    await loadProfiles();
  });

  loadPersonal();

  // ---------------------------------------------------------------- feedback

  function showFeedback(data, maxLength = 1) {
    feedbackLabel.maxLength = maxLength;
    feedbackLabel.classList.toggle("wide", maxLength > 1);
    const best = data && Array.isArray(data.candidates) && data.candidates.length ? data.candidates[0].label : "";
    answered = data && typeof data.prediction_id === "string" ? { id: data.prediction_id, predicted: best } : null;
    feedbackBox.hidden = !answered;
    feedbackForm.hidden = true;
    feedbackLabel.value = "";
    feedbackYes.setAttribute("aria-pressed", "false");
    feedbackNo.setAttribute("aria-pressed", "false");
    setFeedbackStatus("");
  }

  function setFeedbackStatus(message, kind) {
    feedbackStatus.textContent = message;
    feedbackStatus.classList.toggle("error", kind === "error");
  }

  async function sendFeedback(correct, label) {
    if (!answered) return;
    const about = answered;
    const body = { prediction_id: about.id, correct };
    if (label) body.label = label;
    setFeedbackStatus("Saving…");
    const { response, body: reply } = await postFeedback(body);
    if (answered !== about) return; // a newer answer is on screen
    if (!response) {
      setFeedbackStatus("Could not reach the server; your answer was not saved.", "error");
      return;
    }
    if (!response.ok || !reply || reply.status !== "saved") {
      setFeedbackStatus(errorMessage(response, reply), "error");
      if (!correct) feedbackLabel.focus();
      return;
    }
    feedbackYes.setAttribute("aria-pressed", String(correct));
    feedbackNo.setAttribute("aria-pressed", String(!correct));
    if (correct) feedbackForm.hidden = true;
    setFeedbackStatus(
      correct ? "Thanks, saved." : reply.label ? `Thanks, saved: it is “${reply.label}”.` : "Thanks, saved as wrong.",
    );
  }

  feedbackYes.addEventListener("click", () => sendFeedback(true));
  feedbackNo.addEventListener("click", () => {
    feedbackForm.hidden = false;
    feedbackNo.setAttribute("aria-pressed", "true");
    feedbackYes.setAttribute("aria-pressed", "false");
    setFeedbackStatus("Type the right answer, or send without one.");
    feedbackLabel.focus();
  });
  feedbackForm.addEventListener("submit", (event) => {
    event.preventDefault();
    sendFeedback(false, feedbackLabel.value.trim());
  });

  function setStatus(message, kind) {
    statusBox.textContent = message;
    statusBox.classList.toggle("error", kind === "error");
  }

  // A slow answer (the first one loads the model) says so; a quick one does not flicker.
  let busyTimer = 0;
  function setBusy(busy) {
    clearTimeout(busyTimer);
    resultPanel.setAttribute("aria-busy", busy ? "true" : "false");
    resultPanel.classList.toggle("busy", busy);
    if (busy) busyTimer = setTimeout(() => setStatus("Reading…"), 400);
  }

  // ---------------------------------------------------------------- upload

  function hidePreview() {
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = null;
    preview.hidden = true;
    preview.removeAttribute("src");
  }

  function showPreview(file) {
    hidePreview();
    if (!file.type || !file.type.startsWith("image/")) return;
    previewUrl = URL.createObjectURL(file);
    preview.src = previewUrl;
    preview.alt = `Uploaded image: ${file.name || "from the clipboard"}`;
    preview.hidden = false;
  }

  preview.addEventListener("error", () => {
    preview.hidden = true; // e.g. a TIFF the browser cannot show; the server may still read it
  });

  fileInput.addEventListener("change", () => {
    const file = fileInput.files && fileInput.files[0];
    uploadFile(file);
    fileInput.value = ""; // choosing the same file again still fires "change"
  });

  let dragDepth = 0;
  const hasFiles = (event) => event.dataTransfer && Array.from(event.dataTransfer.types || []).includes("Files");

  dropZone.addEventListener("dragenter", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    dragDepth += 1;
    dropZone.classList.add("dragover");
  });
  dropZone.addEventListener("dragover", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
    dropZone.classList.add("dragover");
  });
  dropZone.addEventListener("dragleave", () => {
    dragDepth = Math.max(0, dragDepth - 1);
    if (!dragDepth) dropZone.classList.remove("dragover");
  });
  dropZone.addEventListener("drop", (event) => {
    event.preventDefault();
    dragDepth = 0;
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

  // ---------------------------------------------------------------- controls

  // Each canvas shape keeps its own pen: a single glyph wants a bold one, a sentence on the wide
  // canvas a fine one (thick strokes close the loops of small cursive letters).
  const penWidths = { glyph: Number(penWidth.value), line: LINE_PEN };

  function showPenWidth() {
    penWidthValue.textContent = `${penWidth.value} px`;
    penWidths[W === SIZE && H === SIZE ? "glyph" : "line"] = Number(penWidth.value);
  }

  penWidth.addEventListener("input", showPenWidth);
  undoButton.addEventListener("click", undo);
  clearButton.addEventListener("click", clearCanvas);
  predictButton.addEventListener("click", predictCanvas);

  // The line task writes on a wide canvas; switching shape starts a fresh drawing.
  function fitCanvasToTask() {
    const wide = selectedTask() === "line";
    const [w, h] = wide ? LINE_SIZE : [SIZE, SIZE];
    if (w === W && h === H) return false;
    W = w;
    H = h;
    penWidth.value = String(penWidths[wide ? "line" : "glyph"]);
    penWidthValue.textContent = `${penWidth.value} px`;
    canvas.classList.toggle("wide", wide);
    canvas.parentElement.classList.toggle("wide", wide);
    strokes = [];
    current = null;
    updateButtons();
    setupCanvas();
    return true;
  }

  function reread() {
    if (lastSource === "canvas") predictCanvas();
    else if (lastSource && lastSource.file) uploadFile(lastSource.file);
  }
  alphabetSelect.addEventListener("change", reread);
  correctSpelling.addEventListener("change", reread);

  for (const radio of document.querySelectorAll('input[name="task"]')) {
    radio.addEventListener("change", () => {
      showAlphabetPick();
      if (fitCanvasToTask()) {
        clearResult();
        if (lastSource === "canvas") lastSource = null;
      }
      reread();
    });
  }
  fitCanvasToTask();
  showAlphabetPick();

  canvas.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      predictCanvas();
    } else if (event.key === "Delete" || event.key === "Backspace") {
      event.preventDefault();
      clearCanvas();
    }
  });

  document.addEventListener("keydown", (event) => {
    const target = event.target;
    const typing = target instanceof HTMLElement && (target.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName) && target.type !== "radio" && target.type !== "range");
    if ((event.ctrlKey || event.metaKey) && !event.shiftKey && !event.altKey && event.key.toLowerCase() === "z" && !typing) {
      event.preventDefault();
      undo();
    }
  });

  window.addEventListener("resize", setupCanvas);

  showPenWidth();
  updateButtons();
  setupCanvas();
})();
