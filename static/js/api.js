/* Every request the page makes to the server, and the one reading of its error answers. Each call
 * resolves to {response, body}: the response (null when the server cannot be reached) and its JSON
 * body (null when it sent none). Readings (/submit, /upload) go by XMLHttpRequest, so an upload can
 * report its progress; the rest by fetch. No other module calls fetch or XMLHttpRequest. */

const ACCEPT_JSON = { Accept: "application/json" };

// ---------------------------------------------------------------- errors

/** The text to show for a failed request: the server's own message, else one for its status. */
export function errorMessage(response, body, limitMb = "") {
  const message = body && body.error && typeof body.error.message === "string" ? body.error.message : "";
  if (message) return message;
  if (response.status === 413) return `The upload is too large; the limit is ${limitMb} MB.`;
  if (response.status >= 500) return "Something went wrong on the server; please try again.";
  return `The request failed (HTTP ${response.status}); please try again.`;
}

/** " Try again in 30 s." after a rate limit (429) that says when; "" otherwise. */
export function tryAgainText(response) {
  return response && response.status === 429 ? ` Try again in ${response.headers.get("Retry-After")} s.` : "";
}

// ---------------------------------------------------------------- JSON requests (fetch)

async function requestJson(url, options) {
  try {
    const response = await fetch(url, options);
    const body = await response.json().catch(() => null);
    return { response, body };
  } catch (_) {
    return { response: null, body: null };
  }
}

const getJson = (url) => requestJson(url, { headers: ACCEPT_JSON });

function sendJson(url, body, headers = {}) {
  return requestJson(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...ACCEPT_JSON, ...headers },
    body: JSON.stringify(body),
  });
}

function formOf(file, fallbackName, fields = {}) {
  const form = new FormData();
  form.append("file", file, file.name || fallbackName);
  Object.entries(fields).forEach(([k, v]) => form.append(k, v));
  return form;
}

/** Feedback on one answer: {prediction_id, correct, label?}; the server commits it, then answers. */
export const postFeedback = (body) => sendJson("/feedback", body);

/** The profiles this server knows: {profiles: [{name, tasks, sheet}]}. */
export const listProfiles = () => getJson("/personal/profiles");

/** The personal page engines trained from sheets: [{name, engines}]. */
export const listPersonalModels = () => getJson("/sheet/models");

/** Check a photo of a filled-in digit sheet: {sheet_id, annotated_png, glyphs, rows}. */
export const checkSheet = (file) => requestJson("/sheet/check", { method: "POST", body: formOf(file, "sheet") });

/** Queue the training of personal engines on a checked sheet (202: {status_url, profile_token?}). */
export const trainSheet = (sheetId, name, token) => sendJson("/sheet/train", { sheet_id: sheetId, name }, { Authorization: `Bearer ${token}` });

/** Queue teaching profile ``profile`` one sample: a picture ``file`` or a drawing ``image`` (data URL). */
export function teachSample({ file, image, task, label, profile, token }) {
  const headers = { ...ACCEPT_JSON, ...(token ? { "X-Profile-Token": token } : {}) };
  if (file) return requestJson("/personal/teach", { method: "POST", headers, body: formOf(file, "sample", { task, label, profile }) });
  return sendJson("/personal/teach", { image, task, label, profile }, headers);
}

/** Delete a profile and every file of it. */
export const deleteProfile = (name, token) =>
  requestJson(`/personal/profiles/${encodeURIComponent(name)}`, { method: "DELETE", headers: { ...ACCEPT_JSON, "X-Profile-Token": token } });

/** The state of a queued job (a teach, a sheet's training) at its ``status_url``. */
export const jobState = (url) => getJson(url);

// ---------------------------------------------------------------- readings (XMLHttpRequest)

/**
 * POST ``payload`` to ``url``; ``onProgress(loaded, total)`` follows the upload and ``onSent()``
 * ends it. Returns {abort(), answer}: ``answer`` resolves to {response: {status, ok, retryAfter}
 * (seconds, 0 when not given), body}, or {response: null, body: null} when the server cannot be
 * reached; an aborted request never resolves.
 */
function sendReading(url, payload, headers, { onProgress, onSent } = {}) {
  const xhr = new XMLHttpRequest();
  xhr.open("POST", url);
  xhr.setRequestHeader("Accept", "application/json");
  Object.entries(headers).forEach(([k, v]) => xhr.setRequestHeader(k, v));
  if (onProgress) xhr.upload.addEventListener("progress", (e) => e.lengthComputable && onProgress(e.loaded, e.total));
  if (onSent) xhr.upload.addEventListener("load", () => onSent());
  const answer = new Promise((resolve) => {
    xhr.addEventListener("load", () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch (_) {
        /* not JSON: the caller's error text says what happened */
      }
      const status = xhr.status;
      const retryAfter = Number(xhr.getResponseHeader("Retry-After"));
      resolve({ response: { status, ok: status >= 200 && status < 300, retryAfter }, body });
    });
    xhr.addEventListener("error", () => resolve({ response: null, body: null }));
  });
  xhr.send(payload);
  return { abort: () => xhr.abort(), answer };
}

/** Read a drawing: ``fields`` {image (PNG data URL), task, profile?, alphabet?, correct?} as JSON. */
export const readDrawing = (fields, hooks) => sendReading("/submit", JSON.stringify(fields), { "Content-Type": "application/json" }, hooks);

/** Read an uploaded image: ``file`` and the task's ``fields`` {task, alphabet?, engine?, profile?, correct?} as a form. */
export const readUpload = (file, fields, hooks) => sendReading("/upload", formOf(file, "image", fields), {}, hooks);
