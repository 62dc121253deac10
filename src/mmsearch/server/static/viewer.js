// The viewer: a photo, a text, or a video/audio player that starts at the hit's moment, shows
// where the moment lies on a bar under the player and pauses once at its end (play goes on).
// Its footer offers "more like this" and the original file.

import { $, el, fmtTime } from "./dom.js";
import { t } from "./lang.js";
import { isPlayable } from "./results.js";

const TEXT_PREVIEW_CHARS = 200000;
let lastFocus = null;
let current = null; // {hit, media, moment: {from, to}, stopAt}

// The moment to play: the hit's first segment, from where its best part starts.
function momentOf(hit) {
  const seg = hit.segments[0];
  if (!seg || seg.t_start === null || seg.t_start === undefined) return null;
  const from = hit.play_from !== null && hit.play_from !== undefined ? hit.play_from : seg.t_start;
  return { start: seg.t_start, from, to: seg.t_end !== null && seg.t_end !== undefined ? seg.t_end : null };
}

export function openViewer(hit, actions) {
  const body = $("#viewer-body");
  body.replaceChildren();
  $("#viewer-title").textContent = hit.name;
  $("#viewer-info").textContent = hit.path;
  $("#moment").hidden = true;
  current = { hit, media: null, moment: null, stopAt: null };
  if (isPlayable(hit)) showPlayer(hit, body);
  else if (hit.item_modality === "image") body.append(el("img", { src: hit.media_url, alt: hit.name }));
  else showText(hit, body);
  $("#viewer-like").onclick = () => { closeViewer(); actions.more(hit); };
  $("#viewer-open").href = hit.media_url;
  lastFocus = document.activeElement;
  $("#viewer").hidden = false;
  $("#viewer-close").focus();
}

function showPlayer(hit, body) {
  const kind = hit.item_modality;
  const media = el(kind, { controls: true, preload: "metadata", src: hit.media_url, "aria-label": hit.name });
  const moment = momentOf(hit);
  current.media = media;
  current.moment = moment;
  body.append(media);
  if (!moment) return;
  $("#viewer-info").textContent = hit.path + " · " + t("at", { t: fmtTime(moment.from) });
  $("#moment").hidden = false;
  showMomentText();
  media.addEventListener("loadedmetadata", () => { drawMoment(); playMoment(); }, { once: true });
  media.addEventListener("timeupdate", onTime);
}

function showMomentText(stoppedAt) {
  const m = current.moment;
  $("#moment-text").textContent = stoppedAt !== undefined
    ? t("momentEnd", { t: fmtTime(stoppedAt) })
    : t("moment", { from: fmtTime(m.start), to: m.to !== null ? fmtTime(m.to) : "…" });
  $("#moment").classList.toggle("ended", stoppedAt !== undefined);
}

function playMoment() {
  const { media, moment } = current;
  current.stopAt = moment.to !== null && moment.to > moment.from ? moment.to : null;
  showMomentText();
  media.currentTime = moment.from;
  media.play().catch(() => {});
}

// The moment's place on a bar as long as the whole file.
function drawMoment() {
  const { media, moment } = current;
  const duration = media.duration;
  if (!Number.isFinite(duration) || duration <= 0) return;
  const end = moment.to !== null ? Math.min(moment.to, duration) : duration;
  const range = $("#moment-range");
  range.style.left = (100 * moment.start / duration).toFixed(2) + "%";
  range.style.width = Math.max(0.5, 100 * (end - moment.start) / duration).toFixed(2) + "%";
}

function onTime() {
  if (!current || !current.media) return;
  const { media } = current;
  if (Number.isFinite(media.duration) && media.duration > 0) {
    $("#moment-now").style.left = (100 * media.currentTime / media.duration).toFixed(2) + "%";
  }
  if (current.stopAt !== null && media.currentTime >= current.stopAt) {
    const at = current.stopAt;
    current.stopAt = null; // once: pressing play goes on past the moment
    media.pause();
    showMomentText(at);
  }
}

async function showText(hit, body) {
  const seg = hit.segments[0] || {};
  const pre = el("pre", { className: "text", text: seg.text || "…" });
  body.append(pre);
  if (seg.text) return;
  try {
    const res = await fetch(hit.media_url, { credentials: "same-origin" });
    if (res.ok) pre.textContent = (await res.text()).slice(0, TEXT_PREVIEW_CHARS);
  } catch (err) {
    pre.textContent = String(err.message || err);
  }
}

export function closeViewer() {
  const viewer = $("#viewer");
  if (viewer.hidden) return false;
  for (const m of viewer.querySelectorAll("video, audio")) { m.pause(); m.removeAttribute("src"); m.load(); }
  viewer.hidden = true;
  current = null;
  $("#viewer-body").replaceChildren();
  if (lastFocus && document.contains(lastFocus)) lastFocus.focus();
  return true;
}

export function setupViewer() {
  $("#viewer-close").addEventListener("click", closeViewer);
  $("#viewer").addEventListener("click", (e) => { if (e.target.id === "viewer") closeViewer(); });
  $("#viewer-replay").addEventListener("click", () => { if (current && current.moment) playMoment(); });
}
