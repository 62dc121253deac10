// The results grid: a card per hit (search) or item (browsing), arrow-key movement between
// cards, and appending a further page.

import { $, el, fmtDate, fmtTime } from "./dom.js";
import { lang, t } from "./lang.js";

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

// Replaces the grid with ``entries``; ``actions`` = {open(hit), more(hit)}.
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
    ? el("span", { className: "score", title: t("score"), text: hit.score.toFixed(3) })
    : el("span", { className: "date", title: t("date"), text: fmtDate(hit.date, lang()) });
  const node = el("article", {
    className: "card",
    role: "listitem",
    tabindex: "0",
    "data-item": String(hit.item_id),
    "data-index": String(index),
    "aria-label": `${hit.name} · ${kindLabel(kind)} · ${scored ? t("score") + " " + hit.score.toFixed(3) : fmtDate(hit.date, lang())}`,
  }, [
    el("button", { type: "button", className: "thumb", tabindex: "-1", "aria-label": (playable ? t("play") : t("view")) + " " + hit.name, onclick: () => actions.open(hit) }, [
      thumb,
      badges,
      playable ? el("span", { className: "play-mark", "aria-hidden": "true", text: "▶" }) : null,
    ]),
    el("div", { className: "meta" }, [el("span", { className: "name", title: hit.path, text: hit.name }), detail]),
    seg.text ? el("p", { className: "snippet", text: seg.text }) : null,
    el("div", { className: "actions" }, [
      el("button", { type: "button", className: playable ? "play" : "view", text: playable ? "▶ " + t("play") : t("view"), "aria-label": (playable ? t("play") : t("view")) + " " + hit.name, onclick: () => actions.open(hit) }),
      el("button", { type: "button", className: "like", text: t("more"), "aria-label": t("more") + ": " + hit.name, onclick: () => actions.more(hit) }),
      el("a", { href: hit.media_url, target: "_blank", rel: "noopener", text: t("open"), "aria-label": t("open") + ": " + hit.name }),
    ]),
  ]);
  node.addEventListener("keydown", (e) => cardKey(e, hit, node, actions));
  return node;
}

function cardKey(e, hit, node, actions) {
  if (e.target !== node || e.altKey || e.ctrlKey || e.metaKey) return;
  if (e.key === "Enter" || e.key === " ") { e.preventDefault(); actions.open(hit); }
  else if (e.key === "m" || e.key === "M") { e.preventDefault(); actions.more(hit); }
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
