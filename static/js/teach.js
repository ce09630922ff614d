/* Profiles: the profile and personal-engine menus, teaching one sample, and a whole sheet. Its
 * requests go through api.js. */

import { checkSheet, deleteProfile, errorMessage, jobState, listPersonalModels, listProfiles, teachSample, trainSheet, tryAgainText } from "./api.js";
import { $, percent } from "./util.js";

const profileSelect = $("profile-select");
const pageEngine = $("page-engine");

/** The chosen profile as a request field ({} for the standard model). */
export function profileField() {
  return profileSelect.value ? { profile: profileSelect.value } : {};
}

export async function loadProfiles() {
  const { response, body } = await listProfiles();
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
  // no profile yet: nothing to choose, so the menu stays out of the way
  $("profile-pick").classList.toggle("none", body.profiles.length === 0);
}

export async function loadPersonal() {
  loadProfiles();
  const { response, body } = await listPersonalModels();
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

// ---------------------------------------------------------------- a whole sheet

let sheetId = null;
const sheetStatus = $("sheet-status");

function sheetMessage(message, kind) {
  sheetStatus.textContent = message;
  sheetStatus.classList.toggle("error", kind === "error");
}

$("sheet-check").addEventListener("click", async () => {
  const file = $("sheet-file").files[0];
  if (!file) return sheetMessage("Choose a photo or scan of your sheet first.", "error");
  sheetMessage("Checking the sheet…");
  const { response, body } = await checkSheet(file);
  if (!response || !response.ok || !body || !body.sheet_id) {
    $("sheet-result").hidden = true;
    return sheetMessage(response ? errorMessage(response, body) : "Could not reach the server.", "error");
  }
  sheetId = body.sheet_id;
  $("sheet-annotated").src = body.annotated_png;
  $("sheet-summary").textContent =
    `Found ${body.glyphs} digits in 10 rows: ` +
    body.rows.map((r) => `${r.count}×${r.label}`).join(", ") +
    ". Check that every box carries the digit you wrote, then train.";
  $("sheet-result").hidden = false;
  sheetMessage("");
});

$("sheet-train").addEventListener("click", async () => {
  if (!sheetId) return;
  const name = $("sheet-name").value.trim();
  sheetMessage("Queued: your models train in the background…");
  $("sheet-train").disabled = true;
  const { response, body } = await trainSheet(sheetId, name, $("sheet-token").value);
  if (!response || response.status !== 202 || !body) {
    $("sheet-train").disabled = false;
    return sheetMessage((response ? errorMessage(response, body) : "Could not reach the server.") + tryAgainText(response), "error");
  }
  if (body.profile_token) localStorage.setItem(tokenKey(name), body.profile_token);
  const job = await followJob(body.status_url, {
    show: (state) => sheetMessage(`${STEP_NAMES[state.step] || state.step}${etaText(state)}`),
    say: sheetMessage,
  });
  $("sheet-train").disabled = false;
  if (!job) return;
  const acc = job.result.metrics.held_out_accuracy;
  sheetMessage(
    `Trained “${job.result.name}”. On ${job.result.samples.held_out} of your digits kept aside: ` +
      Object.entries(acc).map(([k, v]) => `${k} ${percent(v)}`).join(", ") +
      ". Choose it under Engine to read pages with it.",
  );
  await loadPersonal();
});

for (const radio of document.querySelectorAll('input[name="teach-mode"]')) {
  radio.addEventListener("change", () => {
    const sheet = document.querySelector('input[name="teach-mode"]:checked').value === "sheet";
    $("teach-sheet").hidden = !sheet;
    $("teach-sample").hidden = sheet;
  });
}

// ---------------------------------------------------------------- one sample

const STEP_NAMES = {
  queued: "Waiting for the teach before yours…",
  train: "Training the HOG engine, the CNN and the writer classifier on your sheet",
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

$("teach-profile").addEventListener("change", () => {
  const saved = localStorage.getItem(tokenKey($("teach-profile").value.trim()));
  if (saved) $("teach-token").value = saved;
});

function showTeachResult(job) {
  const r = job.result;
  const guard = (r.metrics || {}).guard || {};
  $("teach-summary").textContent =
    `Profile “${job.profile}” now knows your ${r.labels.map((l) => `“${l}”`).join(", ")} (${job.task}, version ${r.version}, ` +
    `${r.seconds} s). ` +
    (r.promoted
      ? `The adapted model reads the standard test sample at ${percent(guard.personal)} (standard model ${percent(guard.base)}). `
      : "The adapted model did not measure at least as well as the standard one, so the standard one keeps reading for this profile. ") +
    `Choose “${job.profile}” under Profile to read with it.`;
  const drawn = (job.pictures || {})[job.label] || {};
  const figures = Object.keys(PICTURE_TITLES)
    .filter((name) => drawn[name])
    .map((name) => {
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

/** " (about 12 s left)" while a job runs. */
function etaText(state) {
  return state.eta_s > 0 && state.state !== "done" ? ` (about ${Math.ceil(state.eta_s)} s left)` : "";
}

/** The teach panel's progress bar and step for a job's ``state``. */
function showTeachProgress(state) {
  teachProgress.value = Number(state.progress) || 0;
  teachStep.textContent = `${STEP_NAMES[state.step] || state.step}${etaText(state)}`;
}

/** Poll a queued job (a teach, a sheet's training) until it ends: its final state, or null after
 * ``say``ing what went wrong; ``show`` gets every state on the way. */
async function followJob(url, { show = showTeachProgress, say = teachMessage } = {}) {
  for (;;) {
    const { response, body } = await jobState(url);
    if (!response || !response.ok || !body) {
      say(response ? errorMessage(response, body) : "Lost touch with the server.", "error");
      return null;
    }
    show(body);
    if (body.state === "done") return body;
    if (body.state === "failed") {
      say(`${body.kind === "sheet" ? "Training" : "Teaching"} failed: ${body.error || "unknown error"}`, "error");
      return null;
    }
    await new Promise((resolve) => setTimeout(resolve, 700));
  }
}

/** The teach panel; ``drawing()`` is the canvas as a data URL (null when empty), ``task()`` the task. */
export function initTeach({ drawing, task }) {
  $("teach-start").addEventListener("click", async () => {
    const label = $("teach-label").value;
    const name = $("teach-profile").value.trim();
    const file = $("teach-file").files[0];
    const image = file ? null : drawing();
    if (!label) return teachMessage("Type the character your sample is.", "error");
    if (!/^[a-z0-9_-]{1,40}$/.test(name)) return teachMessage("Name the profile with lower-case letters, digits, - or _.", "error");
    if (!file && !image) return teachMessage("Draw the character in the box first, or choose a picture.", "error");
    const token = $("teach-token").value || localStorage.getItem(tokenKey(name)) || "";
    const sample = { file, image, task: task(), label, profile: name, token };
    $("teach-start").disabled = true;
    $("teach-results").hidden = true;
    teachMessage("");
    const { response, body } = await teachSample(sample);
    if (!response || response.status !== 202 || !body) {
      $("teach-start").disabled = false;
      return teachMessage((response ? errorMessage(response, body) : "Could not reach the server.") + tryAgainText(response), "error");
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
    const { response, body } = await deleteProfile(name, token);
    if (!response || !response.ok) return teachMessage(response ? errorMessage(response, body) : "Could not reach the server.", "error");
    localStorage.removeItem(tokenKey(name));
    $("teach-results").hidden = true;
    teachMessage(`Deleted profile “${name}” and every file of it.`);
    await loadProfiles();
  });
}
