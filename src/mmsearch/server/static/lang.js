// The interface language: t(key, vars) and translating the static page (data-i18n* attributes).

import { TEXT } from "./i18n.js";

let current = "en";

export function lang() {
  return current;
}

export function t(key, vars) {
  const table = TEXT[current] || TEXT.en;
  let s = table[key] !== undefined ? table[key] : TEXT.en[key] || key;
  for (const [k, v] of Object.entries(vars || {})) s = s.split(`{${k}}`).join(String(v));
  return s;
}

// The saved choice, else the browser's language (Chinese or English).
export function pickLanguage() {
  const saved = localStorage.getItem("mmsearch.lang");
  if (saved && TEXT[saved]) return saved;
  return (navigator.language || "en").toLowerCase().startsWith("zh") ? "zh" : "en";
}

export function setLanguage(code) {
  current = TEXT[code] ? code : "en";
  document.documentElement.lang = current === "zh" ? "zh-CN" : "en";
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of document.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
  for (const el of document.querySelectorAll("[data-i18n-aria]")) el.setAttribute("aria-label", t(el.dataset.i18nAria));
  for (const b of document.querySelectorAll("[data-lang]")) b.setAttribute("aria-pressed", String(b.dataset.lang === current));
}
