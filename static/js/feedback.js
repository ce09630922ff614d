/* Yes / No / correction for one answer: a glyph, a line of a paragraph, a glyph of a drawn
 * sequence, or an entry of the history. Every control posts to /feedback, which commits the row
 * before it answers; the control says "saved" only after that answer. */

import { errorMessage, postFeedback } from "./api.js";
import { element } from "./util.js";

let made = 0; // numbers the controls that get no id prefix, so labels point at their own input

/**
 * A feedback control for the answer ``about``:
 * {id: prediction id, predicted: what was read, unsure: a "not sure" answer, wide: a line of text}.
 * ``prefix`` names the elements' ids (``prefix``, ``prefix-yes``, ``prefix-no``, ``prefix-label``,
 * ``prefix-send``, ``prefix-status``); ``given`` is feedback given before ({correct, label});
 * ``onSaved({correct, label})`` follows every saved change.
 */
export function feedbackControl(about, { prefix, given = null, onSaved = () => {}, question } = {}) {
  const p = prefix || `feedback-${++made}`;
  const box = element("div", "feedback");
  box.id = p;
  const ask = element("p", "feedback-question");
  ask.id = `${p}-question`;
  ask.textContent = question || (about.unsure ? `Not sure. Is it “${about.predicted}”?` : "Is this right?");
  const buttons = element("div", "buttons");
  buttons.setAttribute("role", "group");
  buttons.setAttribute("aria-labelledby", ask.id);
  const yes = element("button", "", about.unsure ? `Yes, it is ${about.predicted}` : "Yes");
  const no = element("button", "", "No");
  yes.type = no.type = "button";
  yes.id = `${p}-yes`;
  no.id = `${p}-no`;
  buttons.append(yes, no);

  const form = element("form", "feedback-form");
  form.noValidate = true;
  form.hidden = true;
  const label = element("label", "", about.wide ? "The right text" : "The right answer");
  const input = element("input");
  input.id = `${p}-label`;
  label.htmlFor = input.id;
  input.maxLength = about.wide ? 300 : 1;
  input.autocomplete = "off";
  input.setAttribute("autocapitalize", "off");
  input.spellcheck = false;
  input.setAttribute("enterkeyhint", "send");
  if (about.wide) input.classList.add("wide");
  const send = element("button", "primary", "Send");
  send.type = "submit";
  send.id = `${p}-send`;
  form.append(label, input, send);

  const status = element("p", "feedback-status");
  status.id = `${p}-status`;
  status.setAttribute("role", "status");
  status.setAttribute("aria-live", "polite");
  box.append(ask, buttons, form, status);

  const say = (message, kind) => {
    status.textContent = message;
    status.classList.toggle("error", kind === "error");
  };
  const press = (correct) => {
    yes.setAttribute("aria-pressed", String(correct === true));
    no.setAttribute("aria-pressed", String(correct === false));
  };
  press(given ? given.correct : null);
  if (given) say(savedText(about, given));

  async function save(correct, text) {
    const body = { prediction_id: about.id, correct };
    if (text) body.label = text;
    say("Saving…");
    const { response, body: reply } = await postFeedback(body);
    if (!response) return say("Could not reach the server; your answer was not saved.", "error");
    if (!response.ok || !reply || reply.status !== "saved") {
      say(errorMessage(response, reply), "error");
      if (!correct) input.focus();
      return;
    }
    const state = { correct, label: reply.label || null };
    press(correct);
    if (correct) form.hidden = true;
    say(savedText(about, state));
    onSaved(state);
  }

  yes.addEventListener("click", () => save(true));
  no.addEventListener("click", () => {
    form.hidden = false;
    press(false);
    if (about.wide && !input.value) input.value = about.predicted;
    say(about.unsure ? "Type what it is (or send without it if it is not one character)." : "Type the right answer, or send without one.");
    input.focus();
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    save(false, input.value.trim());
  });
  input.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    event.preventDefault();
    form.hidden = true;
    say("");
    no.focus();
  });
  return box;
}

function savedText(about, state) {
  if (state.correct) return about.unsure ? `Thanks, saved: it is “${about.predicted}”.` : "Thanks, saved.";
  return state.label ? `Thanks, saved: it is “${state.label}”.` : "Thanks, saved as wrong.";
}
