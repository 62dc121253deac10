// Small DOM and formatting helpers shared by the page's modules.

export const $ = (sel) => document.querySelector(sel);

// el("button", {className: "x", text: "Go", onclick: fn}, [children]): one element.
export function el(tag, attrs, children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") node.textContent = v;
    else if (k === "className") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children || []) if (c) node.append(c);
  return node;
}

// Seconds as m:ss or h:mm:ss.
export function fmtTime(s) {
  const total = Math.max(0, Math.round(s));
  const h = Math.floor(total / 3600), m = Math.floor((total % 3600) / 60), sec = total % 60;
  const mm = h ? String(m).padStart(2, "0") : String(m);
  return (h ? h + ":" : "") + mm + ":" + String(sec).padStart(2, "0");
}

// Epoch seconds as a short local date in the page's language.
export function fmtDate(epoch, lang) {
  if (epoch === null || epoch === undefined) return "";
  const options = { year: "numeric", month: "short", day: "numeric" };
  return new Date(epoch * 1000).toLocaleDateString(lang === "zh" ? "zh-CN" : "en", options);
}

// An icon: one SVG path in a 24x24 box, hidden from assistive technology.
export function icon(d) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("aria-hidden", "true");
  const path = document.createElementNS(ns, "path");
  path.setAttribute("d", d);
  path.setAttribute("fill", "currentColor");
  svg.append(path);
  return svg;
}

// ``text`` as nodes with the character ranges ``ranges`` ([[start, end], ...], counted in
// code points as the server counts them) in <mark> elements. Never parsed as HTML. A text
// longer than ``limit`` is cut to a window around its first mark, with "…" where cut.
export function highlighted(text, ranges, limit) {
  const chars = Array.from(text || "");
  const marks = (ranges || []).filter((r) => Array.isArray(r) && r[0] < r[1] && r[0] >= 0);
  let from = 0, to = chars.length;
  if (limit && chars.length > limit) {
    const first = marks.length ? marks[0][0] : 0;
    from = Math.max(0, Math.min(first - Math.floor(limit / 4), chars.length - limit));
    to = from + limit;
  }
  const out = [];
  if (from > 0) out.push("…");
  let at = from;
  for (const [start, end] of marks) {
    const a = Math.max(start, at), b = Math.min(end, to);
    if (a >= b) continue;
    if (a > at) out.push(chars.slice(at, a).join(""));
    out.push(el("mark", { text: chars.slice(a, b).join("") }));
    at = b;
  }
  if (at < to) out.push(chars.slice(at, to).join(""));
  if (to < chars.length) out.push("…");
  return out;
}

// A calibrated score (0–1) as a whole percentage, never rounded up to 100.
export function pct(score) {
  return Math.floor(Math.max(0, Math.min(1, score)) * 100) + "%";
}
