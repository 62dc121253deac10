// A question under the search bar with a few answers (never a blocking browser dialog).
// ask(text, [[value, label], ...]) resolves to the chosen value; Esc or a newer question
// resolves to "cancel".

import { $, el } from "./dom.js";

let pending = null;

function finish(value) {
  const box = $("#ask");
  box.hidden = true;
  $("#ask-buttons").replaceChildren();
  const resolve = pending;
  pending = null;
  if (resolve) resolve(value);
}

export function ask(text, choices) {
  if (pending) finish("cancel");
  $("#ask-text").textContent = text;
  const buttons = choices.map(([value, label], i) =>
    el("button", { type: "button", className: i === 0 ? "primary" : "", "data-choice": value, text: label, onclick: () => finish(value) }));
  $("#ask-buttons").replaceChildren(...buttons);
  $("#ask").hidden = false;
  buttons[0].focus();
  return new Promise((resolve) => { pending = resolve; });
}

// Esc: cancel the open question; true when there was one.
export function cancelAsk() {
  if (!pending) return false;
  finish("cancel");
  return true;
}
