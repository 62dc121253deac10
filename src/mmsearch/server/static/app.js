// The search page: browsing the library (newest first) until there is a query; a query made of
// text and/or chips (files, "more like this"); results a page at a time; the viewer.
// Thumbs up / down on a hit refine the search in place (the marked items are sent as like /
// unlike); "more like these" asks /api/recommend for items like the liked ones. Near-duplicates
// are folded (dedupe); a relevance cut-off that leaves nothing says what the best match was.
// Plain browser JavaScript modules, no build step; talks to /api/search, /api/recommend,
// /api/browse, /api/info.

import { ApiError, api, postJson } from "./api.js";
import { ask, cancelAsk } from "./ask.js";
import { Composer, kindOf } from "./compose.js";
import { $, pct } from "./dom.js";
import * as filters from "./filters.js";
import { pickLanguage, setLanguage, t } from "./lang.js";
import { appendToGrid, entryKey, fromItem, renderGrid } from "./results.js";
import { closeViewer, openViewer, setupViewer } from "./viewer.js";

const PAGE = 48;
// 4xx answers that are not about what the query holds (a token, a busy or locked library):
// after any other 4xx, a file or item new to the query is to blame and is taken out.
const KEEP_PARTS_ON = new Set([401, 403, 408, 409, 429]);

const state = {
  view: null, // "browse" or "search": what the grid shows
  entries: [],
  keys: new Set(),
  request: null, // the last search, without k
  endpoint: "/api/search", // or /api/recommend
  bestBelow: null, // the best hit a cut-off dropped, when it dropped them all
  k: PAGE,
  nextOffset: null,
  total: null,
  more: false,
  took: null,
  status: null, // {key, vars, error}: kept so a language switch can say it again
  renders: 0,
  seq: 0,
  info: null,
};
const composer = new Composer($("#chips"), partsChanged, showBoxHint); // modules run after parsing
const actions = {
  open: (hit) => openViewer(hit, actions),
  more: moreLike,
  feedback: markHit,
  feedbackOf: (itemId) => composer.feedbackOf(itemId),
};

// -- status line -----------------------------------------------------------------------
function setStatus(key, vars, isError) {
  state.status = key ? { key, vars, error: Boolean(isError) } : null;
  showStatus();
}

function showStatus() {
  const s = state.status;
  $("#status").textContent = s ? t(s.key, s.vars) : "";
  $("#status").classList.toggle("error", Boolean(s && s.error));
}

function setBusy(busy) {
  document.body.classList.toggle("busy", busy);
  $("#more").disabled = busy;
}

function maxK() {
  return state.info && state.info.limits ? state.info.limits.max_k : 1000;
}

// -- what to show ----------------------------------------------------------------------
function boxText() {
  return $("#q").value.trim();
}

function hasQuery() {
  return !composer.empty || boxText() !== "" || composer.marked("like").length > 0;
}

// A search when there is a query, else the library newest first.
function run() {
  return hasQuery() ? newSearch() : browse(0);
}

// The same view again (after a filter changed).
function rerun() {
  if (state.view === "search" && state.endpoint === "/api/recommend" && composer.marked("like").length) return recommend();
  return state.view === "search" && hasQuery() ? newSearch() : browse(0);
}

async function newSearch() {
  const mode = $("#f-mode").value;
  const body = {
    mode: composer.hasMedia() && mode === "lexical" ? "hybrid" : mode, // words alone cannot read a file
    filters: filters.current(),
    dedupe: filters.dedupe(),
  };
  if (composer.empty) {
    if (boxText()) body.text = boxText();
  } else {
    try {
      body.parts = await composer.requestParts();
    } catch (err) {
      dropSuspects(err.message || String(err));
      return;
    }
  }
  const hasText = Boolean(body.text) || (body.parts || []).some((p) => p.kind === "text" && p.weight > 0);
  if (filters.rerank() && hasText) body.rerank = true;
  if (filters.minScore() !== null) body.min_score = filters.minScore();
  const like = composer.marked("like"), unlike = composer.marked("unlike");
  if (like.length) body.like = like;
  if (unlike.length) body.unlike = unlike;
  state.request = body;
  state.endpoint = "/api/search";
  state.k = Math.min(PAGE, maxK());
  await fetchSearch(false);
}

// "More like these": items like the liked ones (and unlike the disliked), with some variety.
async function recommend() {
  const body = {
    positive: composer.marked("like"),
    negative: composer.marked("unlike"),
    filters: filters.current(),
    diversity: 0.2,
  };
  if (!body.positive.length) return;
  if (filters.minScore() !== null) body.min_score = filters.minScore();
  state.request = body;
  state.endpoint = "/api/recommend";
  state.k = Math.min(PAGE, maxK());
  await fetchSearch(false);
}

// Marks a hit as a good or a bad match (or takes the mark off) and searches again.
function markHit(hit, kind) {
  cancelAsk();
  composer.setFeedback(hit, kind);
  run();
}

async function fetchSearch(append) {
  const seq = ++state.seq;
  const k = state.k;
  setStatus(append ? "loading" : "searching");
  setBusy(true);
  try {
    const result = await postJson(state.endpoint, Object.assign({}, state.request, { k }));
    if (seq !== state.seq) return;
    composer.markChecked();
    state.bestBelow = result.best_below || null;
    const from = append ? state.entries.length : 0;
    if (!append) { state.entries = []; state.keys = new Set(); }
    for (const hit of result.hits) {
      const key = entryKey(hit);
      if (!state.keys.has(key)) { state.keys.add(key); state.entries.push(hit); }
    }
    state.view = "search";
    state.took = result.took_ms;
    state.more = result.hits.length >= k && k < maxK() && (!append || state.entries.length > from);
    rememberQuery();
    render(append ? from : null);
  } catch (err) {
    if (seq === state.seq) searchFailed(err);
  } finally {
    if (seq === state.seq) setBusy(false);
  }
}

function searchFailed(err) {
  const status = err instanceof ApiError ? err.status : 0;
  if (status >= 400 && status < 500 && !KEEP_PARTS_ON.has(status) && composer.unchecked().length) {
    dropSuspects(err.message);
  } else {
    setStatus("error", { msg: err.message }, true);
  }
}

// Takes the parts no search has accepted yet out of the query, saying why.
function dropSuspects(msg) {
  const suspects = composer.unchecked();
  for (const p of suspects) composer.remove(p.id);
  wordsBackToBox();
  setStatus("attachFailed", { name: suspects.map((p) => p.name).join(", "), msg }, true);
}

async function browse(offset) {
  const seq = ++state.seq;
  const params = filters.browseParams();
  params.set("offset", String(offset));
  params.set("limit", String(PAGE));
  setStatus("loading");
  setBusy(true);
  try {
    const page = await api("/api/browse?" + params.toString());
    if (seq !== state.seq) return;
    const from = offset ? state.entries.length : 0;
    if (!offset) { state.entries = []; state.keys = new Set(); }
    for (const item of page.items) {
      const entry = fromItem(item);
      if (!state.keys.has(entryKey(entry))) { state.keys.add(entryKey(entry)); state.entries.push(entry); }
    }
    state.view = "browse";
    state.total = page.total;
    state.nextOffset = page.next_offset;
    state.more = page.next_offset !== null && page.next_offset !== undefined;
    rememberQuery();
    render(offset ? from : null);
  } catch (err) {
    if (seq === state.seq) setStatus("browseError", { msg: err.message }, true);
  } finally {
    if (seq === state.seq) setBusy(false);
  }
}

function loadMore() {
  if (!state.more) return;
  if (state.view === "search") {
    state.k = Math.min(state.k + PAGE, maxK());
    fetchSearch(true);
  } else {
    browse(state.nextOffset);
  }
}

function rememberQuery() {
  const url = new URL(location.href);
  const text = state.request && state.request.text;
  if (state.view === "search" && text) url.searchParams.set("q", text);
  else url.searchParams.delete("q");
  history.replaceState(null, "", url);
}

// -- rendering -------------------------------------------------------------------------
function render(from) {
  state.renders += 1;
  if (from === null || from === undefined) renderGrid(state.entries, actions);
  else appendToGrid(state.entries, from, actions);
  showCounts();
  showEmpty();
  $("#more").hidden = !state.more;
  $("#welcome").hidden = state.view !== "browse";
  showRecommend();
}

// The "more like these" button, while some items are liked.
function showRecommend() {
  const n = composer.marked("like").length;
  $("#recommend").hidden = n === 0;
  $("#recommend").textContent = t("recommend", { n });
}

function showCounts() {
  const n = state.entries.length;
  if (!n) setStatus(null);
  else if (state.view === "browse") setStatus("browsing", { shown: n, total: state.total });
  else setStatus(n === 1 ? "foundOne" : "found", { n, ms: Math.round(state.took) });
}

function showEmpty() {
  const empty = state.view !== null && state.entries.length === 0;
  $("#empty").hidden = !empty;
  if (!empty) return;
  const active = filters.describe(state.view === "search");
  $("#clear-filters").hidden = active.length === 0;
  const best = state.view === "search" ? state.bestBelow : null;
  if (best) $("#empty-text").textContent = t("noConfident", { name: best.name, score: pct(best.score) });
  else if (active.length) $("#empty-text").textContent = t("noneFiltered", { list: active.join(", ") });
  else $("#empty-text").textContent = t(state.view === "browse" ? "emptyLibrary" : "none");
}

// -- composing the query ---------------------------------------------------------------
// With no files or items left in the query, a lone words chip goes back into the box.
function wordsBackToBox() {
  if (composer.hasMedia()) return;
  const words = composer.parts.filter((p) => p.kind === "text");
  if (words.length === 1 && boxText() === "" && words[0].weight === 1) {
    composer.clear();
    $("#q").value = words[0].value;
  }
}

function showBoxHint() {
  const key = composer.empty ? "placeholder" : "placeholderMore";
  $("#q").dataset.i18nPlaceholder = key;
  $("#q").placeholder = t(key);
}

async function addFile(file) {
  const kind = kindOf(file);
  if (!kind) {
    setStatus("notMedia", { name: file.name || "…" }, true);
    return;
  }
  const text = boxText();
  if (text || !composer.empty) {
    const current = [text ? `“${text}”` : "", composer.describe()].filter(Boolean).join(" + ");
    const name = file.name || "…";
    const choice = await ask(t("askFile", { file: name, current }), [
      ["both", t("together")],
      ["file", t("onlyFile", { name })],
      ["cancel", t("cancel")],
    ]);
    if (choice === "cancel") return;
    if (choice === "file") composer.clear();
    else if (text) composer.addText(text);
    $("#q").value = "";
  }
  composer.addFile(file, kind);
  await newSearch();
}

async function submit() {
  const text = boxText();
  const last = (state.request && state.request.text) || "";
  if (composer.empty && text && text !== last) composer.clearFeedback(); // marks were for another query
  if (text && !composer.empty) {
    const choice = await ask(t("askText", { text, current: composer.describe() }), [
      ["both", t("together")],
      ["text", t("onlyWords")],
      ["cancel", t("cancel")],
    ]);
    if (choice === "cancel") return;
    if (choice === "text") composer.clear();
    else { composer.addText(text); $("#q").value = ""; }
  }
  await run();
}

function moreLike(hit) {
  cancelAsk();
  composer.clear();
  $("#q").value = "";
  composer.addItem(hit);
  newSearch();
  window.scrollTo({ top: 0, behavior: "smooth" });
}

function partsChanged(reason) {
  if (reason === "remove") wordsBackToBox();
  if (state.endpoint === "/api/recommend" && composer.marked("like").length) recommend();
  else run();
}

// -- drag and drop, paste, picking -------------------------------------------------------
function fileFrom(dataTransfer) {
  const files = [...((dataTransfer && dataTransfer.files) || [])];
  return files.find((f) => kindOf(f)) || files[0] || null;
}

function setupDrop() {
  const overlay = $("#drop-overlay");
  let depth = 0;
  const hasFiles = (e) => e.dataTransfer && [...e.dataTransfer.types].includes("Files");
  document.addEventListener("dragenter", (e) => { if (hasFiles(e)) { depth++; overlay.hidden = false; } });
  document.addEventListener("dragleave", () => { depth = Math.max(0, depth - 1); if (!depth) overlay.hidden = true; });
  document.addEventListener("dragover", (e) => { if (hasFiles(e)) e.preventDefault(); });
  document.addEventListener("drop", (e) => {
    depth = 0;
    overlay.hidden = true;
    const file = fileFrom(e.dataTransfer);
    if (file) { e.preventDefault(); addFile(file); }
  });
  document.addEventListener("paste", (e) => {
    const file = fileFrom(e.clipboardData);
    if (file) { e.preventDefault(); addFile(file); }
  });
  $("#file").addEventListener("change", (e) => {
    const file = e.target.files[0];
    e.target.value = "";
    if (file) addFile(file);
  });
}

// -- keyboard ----------------------------------------------------------------------------
function setupKeys() {
  document.addEventListener("keydown", (e) => {
    const active = document.activeElement;
    const typing = /^(INPUT|SELECT|TEXTAREA)$/.test(active.tagName);
    if (e.key === "Escape") {
      if (cancelAsk() || closeViewer()) return;
      if (active.id === "q" && (!composer.empty || composer.feedback.length)) { composer.clear(); run(); return; }
    }
    if (e.key === "/" && !typing) { e.preventDefault(); $("#q").focus(); $("#q").select(); }
    if (e.key === "ArrowDown" && active.id === "q") {
      const first = document.querySelector("#results .card");
      if (first) { e.preventDefault(); first.focus(); }
    }
  });
  $("#file-label").addEventListener("keydown", (e) => {
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); $("#file").click(); }
  });
}

// -- library info, language ----------------------------------------------------------------
async function loadInfo() {
  try { state.info = await api("/api/info"); } catch (err) { state.info = null; }
  filters.offerRerank(state.info && state.info.rerankers);
  showLibraryInfo();
}

function showLibraryInfo() {
  const info = state.info;
  if (!info) return;
  $("#library-info").textContent = t("libraryInfo", {
    items: t("items", { n: info.items }),
    name: info.library,
    model: info.model_id || info.model,
  });
}

function applyLanguage(code) {
  setLanguage(code);
  showBoxHint();
  composer.render();
  filters.showCount();
  filters.showMinScore();
  if (state.view !== null) render(null);
  else showStatus();
  showLibraryInfo();
}

// -- start -------------------------------------------------------------------------------
function start() {
  $("#search-form").addEventListener("submit", (e) => { e.preventDefault(); submit(); });
  $("#more").addEventListener("click", loadMore);
  $("#recommend").addEventListener("click", recommend);
  $("#clear-filters").addEventListener("click", () => { filters.clear(); rerun(); });
  for (const b of document.querySelectorAll("[data-lang]")) {
    b.addEventListener("click", () => { localStorage.setItem("mmsearch.lang", b.dataset.lang); applyLanguage(b.dataset.lang); });
  }
  filters.onChange(() => rerun());
  filters.setupToggle();
  setupViewer();
  setupDrop();
  setupKeys();
  applyLanguage(pickLanguage());
  loadInfo();
  const q = new URL(location.href).searchParams.get("q");
  if (q) $("#q").value = q;
  else if (window.matchMedia("(pointer: fine)").matches) $("#q").focus(); // no phone keyboard popping up
  run();
}

window.mmsearch = { state, composer, run };
start();
