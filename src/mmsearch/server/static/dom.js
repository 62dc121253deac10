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
