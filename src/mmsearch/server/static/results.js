// The results grid: a card per hit (search) or item (browsing), arrow-key movement between
// cards, and appending a further page. A search hit shows its relevance (the calibrated
// score as a bar and a percentage), its evidence (each source that matched, with its
// score), the matched text with the query's words marked, thumbs up / down to refine the
// search, and the near-duplicates folded into it ("n similar", shown on demand).

import { $, el, fmtDate, fmtTime, highlighted, icon, pct } from "./dom.js";
import { lang, t } from "./lang.js";

const SNIPPET_CHARS = 240;
const THUMB_UP = "M1 21h4V9H1v12zm22-11c0-1.1-.9-2-2-2h-6.31l.95-4.57.03-.32c0-.41-.17-.79-.44-1.06L14.17 1 7.59 7.59C7.22 7.95 7 8.45 7 9v10c0 1.1.9 2 2 2h9c.83 0 1.54-.5 1.84-1.22l3.02-7.05c.09-.23.14-.47.14-.73v-2z";
const THUMB_DOWN = "M15 3H6c-.83 0-1.54.5-1.84 1.22l-3.02 7.05c-.09.23-.14.47-.14.73v2c0 1.1.9 2 2 2h6.31l-.95 4.57-.03.32c0 .41.17.79.44 1.06L9.83 23l6.59-6.59c.36-.36.58-.86.58-1.41V5c0-1.1-.9-2-2-2zm4 0v12h4V3h-4z";
const SOURCE_TEXT = {
  "main/image": "srcPicture",
  "main/video": "srcVideo",
  "main/text": "srcText",
  "text/text": "srcTextMeaning",
  "audio/audio": "srcSound",
  "video/video": "srcVideo",
  lexical: "srcWords",
};

// An /api/browse item in the shape of a search hit (no score; its date instead).
export function fromItem(item) {
  return {
    item_id: item.item_id,
    path: item.path,
    name: item.name,
    item_modality: item.modality,
    score: null,
    date: item.taken_at !== null && item.taken_at !== undefined ? item.taken_at : item.mtime,
    segments: [],
    thumbnail_url: item.thumbnail_url,
    media_url: item.media_url,
    play_from: null,
  };
}

// A key telling entries apart (one item may come back as several moments).
export function entryKey(hit) {
  return `${hit.item_id}@${hit.play_from === null || hit.play_from === undefined ? "" : hit.play_from}`;
}

export function kindLabel(kind) {
  return t("kind" + kind.charAt(0).toUpperCase() + kind.slice(1));
}

export function isPlayable(hit) {
  return hit.item_modality === "video" || hit.item_modality === "audio";
}

// How a source of evidence is called on the page: "Picture", "Words", "Reranker", ...
export function sourceLabel(source) {
  if (!source) return "";
  if (source.startsWith("rerank")) return t("srcRerank");
  return SOURCE_TEXT[source] ? t(SOURCE_TEXT[source]) : source;
}

// An item folded into a hit as a near-duplicate, in the shape of a hit (to open it).
function fromSimilar(item) {
  return Object.assign({ score: null, segments: [], play_from: null, date: null }, item);
}

// Replaces the grid with ``entries``; ``actions`` = {open(hit), more(hit), feedback(hit,
// kind), feedbackOf(item_id)}.
export function renderGrid(entries, actions) {
  $("#results").replaceChildren(...entries.map((hit, i) => card(hit, i, actions)));
}

export function appendToGrid(entries, from, actions) {
  $("#results").append(...entries.slice(from).map((hit, i) => card(hit, from + i, actions)));
}

function card(hit, index, actions) {
  const kind = hit.item_modality;
  const seg = hit.segments[0] || {};
  const timed = hit.play_from !== null && hit.play_from !== undefined;
  const playable = isPlayable(hit);
  const thumb = hit.thumbnail_url
    ? el("img", { src: hit.thumbnail_url + "?size=256", alt: "", loading: "lazy", decoding: "async" })
    : el("div", { className: "glyph glyph-" + kind, "aria-hidden": "true", text: kind === "text" ? "¶" : "♪" });
  const badges = el("div", { className: "badges" }, [
    el("span", { className: "badge kind-" + kind, text: kindLabel(kind) }),
    timed && seg.t_end !== undefined ? el("span", { className: "badge time", text: fmtTime(seg.t_start) + "–" + fmtTime(seg.t_end) }) : null,
  ]);
  const scored = hit.score !== null && hit.score !== undefined;
  const detail = scored
    ? relevance(hit.score)
    : el("span", { className: "date", title: t("date"), text: fmtDate(hit.date, lang()) });
  const node = el("article", {
    className: "card",
    role: "listitem",
    tabindex: "0",
    "data-item": String(hit.item_id),
    "data-index": String(index),
    "aria-label": `${hit.name} · ${kindLabel(kind)} · ${scored ? t("relevance") + " " + pct(hit.score) : fmtDate(hit.date, lang())}`,
  }, [
    el("button", { type: "button", className: "thumb", tabindex: "-1", "aria-label": (playable ? t("play") : t("view")) + " " + hit.name, onclick: () => actions.open(hit) }, [
      thumb,
      badges,
      playable ? el("span", { className: "play-mark", "aria-hidden": "true", text: "▶" }) : null,
    ]),
    el("div", { className: "meta" }, [el("span", { className: "name", title: hit.path, text: hit.name }), detail]),
    scored ? evidence(hit) : null,
    snippet(hit),
    similar(hit, actions),
    el("div", { className: "actions" }, [
      el("button", { type: "button", className: playable ? "play" : "view", text: playable ? "▶ " + t("play") : t("view"), "aria-label": (playable ? t("play") : t("view")) + " " + hit.name, onclick: () => actions.open(hit) }),
      el("button", { type: "button", className: "like", text: t("more"), "aria-label": t("more") + ": " + hit.name, onclick: () => actions.more(hit) }),
      scored ? thumbButton(hit, "like", actions) : null,
      scored ? thumbButton(hit, "unlike", actions) : null,
      el("a", { href: hit.media_url, target: "_blank", rel: "noopener", text: t("open"), "aria-label": t("open") + ": " + hit.name }),
    ]),
  ]);
  node.addEventListener("keydown", (e) => cardKey(e, hit, node, actions));
  return node;
}

// The calibrated score as a bar and a percentage.
function relevance(score) {
  const fill = el("span", { className: "scorebar-fill" });
  fill.style.width = (100 * Math.max(0, Math.min(1, score))).toFixed(1) + "%";
  return el("span", { className: "score", title: t("relevanceHint") }, [
    el("span", { className: "scorebar", "aria-hidden": "true" }, [fill]),
    el("span", { className: "score-value", text: pct(score) }),
  ]);
}

// Each source that found the hit, strongest first, with its own calibrated score.
function evidence(hit) {
  const list = (hit.evidence || []).filter((e) => e.source);
  if (!list.length) return null;
  return el("ul", { className: "evidence", "aria-label": t("evidence") }, list.map((e) =>
    el("li", { "data-source": e.source, title: e.raw !== undefined ? t("rawScore", { raw: e.raw.toFixed(3) }) : null }, [
      el("span", { className: "evidence-source", text: sourceLabel(e.source) }),
      el("span", { className: "evidence-score", text: pct(e.score) }),
    ])));
}

// The matched text, the query's words marked: the first moment or evidence with marks,
// else the first text there is.
function snippet(hit) {
  const texts = [...hit.segments, ...(hit.evidence || [])].filter((s) => s.text);
  const best = texts.find((s) => s.highlights && s.highlights.length) || texts[0];
  if (!best) return null;
  return el("p", { className: "snippet" }, highlighted(best.text, best.highlights, SNIPPET_CHARS));
}

// "n similar": the near-duplicates folded into this hit, listed on demand.
function similar(hit, actions) {
  const items = hit.similar_items || [];
  if (!items.length) return null;
  const list = el("ul", { className: "similar-list", hidden: true }, items.map((item) =>
    el("li", {}, [
      el("button", { type: "button", className: "similar-item", "aria-label": t("view") + " " + item.name, onclick: () => actions.open(fromSimilar(item)) }, [
        item.thumbnail_url ? el("img", { src: item.thumbnail_url + "?size=128", alt: "" }) : null,
        el("span", { text: item.name }),
      ]),
    ])));
  const toggle = el("button", {
    type: "button", className: "similar-toggle", "aria-expanded": "false",
    text: t("similarN", { n: items.length }),
    "aria-label": t("similarOf", { n: items.length, name: hit.name }),
  });
  toggle.addEventListener("click", () => {
    const open = toggle.getAttribute("aria-expanded") !== "true";
    toggle.setAttribute("aria-expanded", String(open));
    list.hidden = !open;
  });
  return el("div", { className: "similar" }, [toggle, list]);
}

// Thumbs up ("like") or down ("unlike"): pressed when the hit is marked so.
function thumbButton(hit, kind, actions) {
  const pressed = actions.feedbackOf(hit.item_id) === kind;
  const label = t(kind === "like" ? "goodMatch" : "badMatch", { name: hit.name });
  return el("button", {
    type: "button", className: "thumb-" + (kind === "like" ? "up" : "down"),
    "aria-pressed": String(pressed), "aria-label": label, title: label,
    onclick: () => actions.feedback(hit, kind),
  }, [icon(kind === "like" ? THUMB_UP : THUMB_DOWN)]);
}

function cardKey(e, hit, node, actions) {
  if (e.target !== node || e.altKey || e.ctrlKey || e.metaKey) return;
  if (e.key === "Enter" || e.key === " ") { e.preventDefault(); actions.open(hit); }
  else if (e.key === "m" || e.key === "M") { e.preventDefault(); actions.more(hit); }
  else if ((e.key === "+" || e.key === "-") && hit.score !== null && hit.score !== undefined) {
    e.preventDefault();
    actions.feedback(hit, e.key === "+" ? "like" : "unlike");
  }
  else if (e.key === "o" || e.key === "O") { e.preventDefault(); window.open(hit.media_url, "_blank", "noopener"); }
  else if (e.key.startsWith("Arrow")) { e.preventDefault(); moveFocus(node, e.key); }
}

function moveFocus(node, key) {
  const cards = [...document.querySelectorAll("#results .card")];
  const i = cards.indexOf(node);
  let j = i;
  if (key === "ArrowRight") j = i + 1;
  else if (key === "ArrowLeft") j = i - 1;
  else {
    const columns = cards.filter((c) => c.offsetTop === cards[0].offsetTop).length || 1;
    j = key === "ArrowDown" ? i + columns : i - columns;
  }
  if (j >= 0 && j < cards.length) cards[j].focus();
}
