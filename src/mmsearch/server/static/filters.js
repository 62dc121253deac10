// The filter fields: what they hold, how to say it, clearing them, and folding them away on
// narrow screens (a toggle button that says how many are active). Besides the filters proper:
// the match mode, the relevance cut-off (a slider over the calibrated 0–1 scale), folding
// near-duplicates (on by default) and, when the server offers rerankers, a reranking switch.

import { $, pct } from "./dom.js";
import { t } from "./lang.js";

const FIELDS = ["#f-type", "#f-from", "#f-to", "#f-folder"];
export const DEFAULT_MODE = "hybrid";
let appliedFolder = "";

// Filters as /api/search takes them.
export function current() {
  const f = {};
  const type = $("#f-type").value;
  if (type) f.type = type;
  if ($("#f-from").value) f.date_from = $("#f-from").value;
  if ($("#f-to").value) f.date_to = $("#f-to").value;
  const folder = $("#f-folder").value.trim();
  if (folder) f.path_prefix = folder;
  return f;
}

// The relevance cut-off (min_score), or null when the slider is at 0.
export function minScore() {
  const v = Number($("#f-min").value);
  return Number.isFinite(v) && v > 0 ? v : null;
}

export function showMinScore() {
  const v = minScore();
  $("#f-min-value").textContent = v === null ? t("anyScore") : "≥ " + pct(v);
}

// Whether to fold near-duplicates into one hit (on unless unticked).
export function dedupe() {
  return $("#f-dedupe").checked;
}

// Whether to rerank (the switch shows only when the server offers a reranker).
export function rerank() {
  return !$("#f-rerank-label").hidden && $("#f-rerank").checked;
}

export function offerRerank(names) {
  $("#f-rerank-label").hidden = !(names && names.length);
  $("#f-rerank-label").title = names && names.length ? names.join(", ") : "";
}

// The same as query-string parameters for /api/browse.
export function browseParams() {
  const f = current();
  const p = new URLSearchParams();
  if (f.type) p.set("type", f.type);
  if (f.path_prefix) p.set("under", f.path_prefix);
  if (f.date_from) p.set("date_from", f.date_from);
  if (f.date_to) p.set("date_to", f.date_to);
  return p;
}

function selectedText(sel) {
  return $(sel).selectedOptions[0] ? $(sel).selectedOptions[0].textContent : $(sel).value;
}

// The active filters (and a match mode other than the default, when searching) in words.
export function describe(withMode) {
  const f = current();
  const out = [];
  if (f.type) out.push(t("filterType", { v: selectedText("#f-type") }));
  if (f.date_from) out.push(t("filterFrom", { v: f.date_from }));
  if (f.date_to) out.push(t("filterTo", { v: f.date_to }));
  if (f.path_prefix) out.push(t("filterFolder", { v: f.path_prefix }));
  if (withMode && $("#f-mode").value !== DEFAULT_MODE) out.push(t("filterMode", { v: selectedText("#f-mode") }));
  if (withMode && minScore() !== null) out.push(t("filterMin", { v: pct(minScore()) }));
  if (withMode && !dedupe()) out.push(t("filterNoDedupe"));
  return out;
}

export function clear() {
  for (const sel of FIELDS) $(sel).value = "";
  $("#f-mode").value = DEFAULT_MODE;
  $("#f-min").value = "0";
  $("#f-dedupe").checked = true;
  appliedFolder = "";
  showMinScore();
  showCount();
}

export function showCount() {
  const n = Object.keys(current()).length + (minScore() !== null ? 1 : 0);
  $("#filters-toggle-text").textContent = n ? t("filtersToggleN", { n }) : t("filtersToggle");
}

export function setupToggle() {
  const toggle = $("#filters-toggle");
  toggle.addEventListener("click", () => {
    const open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", String(open));
    $("#filters").classList.toggle("open", open);
  });
}

// Calls onChange() when a filter is changed (the folder when it is left or Enter is pressed).
export function onChange(callback) {
  appliedFolder = $("#f-folder").value.trim();
  const fire = (sel) => {
    if (sel === "#f-folder") {
      if ($(sel).value.trim() === appliedFolder) return;
      appliedFolder = $(sel).value.trim();
    }
    showCount();
    callback(sel);
  };
  for (const sel of [...FIELDS, "#f-mode", "#f-min", "#f-dedupe", "#f-rerank"]) $(sel).addEventListener("change", () => fire(sel));
  $("#f-min").addEventListener("input", showMinScore);
  $("#f-folder").addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); fire("#f-folder"); } });
}
