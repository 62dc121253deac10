// The search page: text and file queries, filters, a results grid, a player, "more like this".
// Plain browser JavaScript, no build step; talks to /api/search and /api/search/upload.
"use strict";

(() => {
  const $ = (sel) => document.querySelector(sel);
  const TEXT = window.MMS_TEXT;
  const state = { lang: "en", file: null, fileUrl: null, like: null, hits: [], lastTook: null, renders: 0 };

  // -- language ------------------------------------------------------------------------
  function t(key, vars) {
    const table = TEXT[state.lang] || TEXT.en;
    let s = table[key] !== undefined ? table[key] : TEXT.en[key] || key;
    for (const [k, v] of Object.entries(vars || {})) s = s.split(`{${k}}`).join(String(v));
    return s;
  }

  function pickLanguage() {
    const saved = localStorage.getItem("mmsearch.lang");
    if (saved && TEXT[saved]) return saved;
    return (navigator.language || "en").toLowerCase().startsWith("zh") ? "zh" : "en";
  }

  function applyLanguage(lang) {
    state.lang = TEXT[lang] ? lang : "en";
    document.documentElement.lang = state.lang === "zh" ? "zh-CN" : "en";
    for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
    for (const el of document.querySelectorAll("[data-i18n-placeholder]")) el.placeholder = t(el.dataset.i18nPlaceholder);
    for (const el of document.querySelectorAll("[data-i18n-title]")) el.title = t(el.dataset.i18nTitle);
    for (const el of document.querySelectorAll("[data-i18n-aria]")) el.setAttribute("aria-label", t(el.dataset.i18nAria));
    for (const b of document.querySelectorAll("[data-lang]")) b.setAttribute("aria-pressed", String(b.dataset.lang === state.lang));
    if (state.hits.length) render(state.hits, state.lastTook);
    updateChip();
    showLibraryInfo();
  }

  // -- talking to the server -----------------------------------------------------------
  async function api(path, options) {
    const res = await fetch(path, Object.assign({ credentials: "same-origin" }, options));
    const body = await res.json().catch(() => ({}));
    if (!res.ok) {
      const detail = typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail || res.statusText);
      throw new Error(detail);
    }
    return body;
  }

  function filters() {
    const f = {};
    const type = $("#f-type").value;
    if (type) f.type = type;
    if ($("#f-from").value) f.date_from = $("#f-from").value;
    if ($("#f-to").value) f.date_to = $("#f-to").value;
    const folder = $("#f-folder").value.trim();
    if (folder) f.path_prefix = folder;
    return f;
  }

  async function search() {
    const text = $("#q").value.trim();
    if (!text && !state.file && state.like === null) return;
    setStatus(t("searching"));
    document.body.classList.add("busy");
    const mode = state.file || state.like !== null ? "vector" : $("#f-mode").value;
    try {
      let result;
      if (state.file) {
        const form = new FormData();
        form.append("file", state.file, state.file.name || "query");
        if (text) form.append("text", text);
        form.append("k", "48");
        form.append("mode", mode);
        form.append("filters", JSON.stringify(filters()));
        result = await api("/api/search/upload", { method: "POST", body: form });
      } else {
        const body = { k: 48, mode, filters: filters() };
        if (text) body.text = text;
        if (state.like !== null) body.like = state.like.id;
        result = await api("/api/search", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify(body),
        });
      }
      state.hits = result.hits;
      state.lastTook = result.took_ms;
      render(result.hits, result.took_ms);
      rememberQuery(text);
    } catch (err) {
      setStatus(t("error", { msg: err.message }), true);
    } finally {
      document.body.classList.remove("busy");
    }
  }

  function rememberQuery(text) {
    const url = new URL(location.href);
    if (text && !state.file && state.like === null) url.searchParams.set("q", text);
    else url.searchParams.delete("q");
    history.replaceState(null, "", url);
  }

  // -- results -------------------------------------------------------------------------
  function setStatus(msg, isError) {
    const el = $("#status");
    el.textContent = msg;
    el.classList.toggle("error", Boolean(isError));
  }

  function fmtTime(s) {
    const total = Math.max(0, Math.round(s));
    const h = Math.floor(total / 3600), m = Math.floor((total % 3600) / 60), sec = total % 60;
    const mm = h ? String(m).padStart(2, "0") : String(m);
    return (h ? h + ":" : "") + mm + ":" + String(sec).padStart(2, "0");
  }

  function el(tag, attrs, children) {
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

  function kindLabel(kind) {
    return t("kind" + kind.charAt(0).toUpperCase() + kind.slice(1));
  }

  function render(hits, took) {
    state.renders += 1;
    const grid = $("#results");
    grid.replaceChildren();
    $("#welcome").hidden = hits.length > 0;
    if (!hits.length) {
      setStatus(t("none"));
      return;
    }
    setStatus(hits.length === 1 ? t("foundOne", { ms: Math.round(took) }) : t("found", { n: hits.length, ms: Math.round(took) }));
    hits.forEach((hit, i) => grid.append(card(hit, i)));
  }

  function card(hit, index) {
    const kind = hit.item_modality;
    const seg = hit.segments[0] || {};
    const timed = hit.play_from !== null && hit.play_from !== undefined;
    const thumb = hit.thumbnail_url
      ? el("img", { src: hit.thumbnail_url + "?size=256", alt: hit.name, loading: "lazy", decoding: "async" })
      : el("div", { className: "glyph glyph-" + kind, "aria-hidden": "true", text: kind === "text" ? "¶" : "♪" });
    const badges = el("div", { className: "badges" }, [
      el("span", { className: "badge kind-" + kind, text: kindLabel(kind) }),
      timed && seg.t_end !== undefined ? el("span", { className: "badge time", text: fmtTime(seg.t_start) + "–" + fmtTime(seg.t_end) }) : null,
    ]);
    const playable = kind === "video" || kind === "audio";
    const node = el("article", {
      className: "card",
      role: "listitem",
      tabindex: "0",
      "data-item": String(hit.item_id),
      "data-index": String(index),
      "aria-label": `${hit.name} · ${kindLabel(kind)} · ${t("score")} ${hit.score.toFixed(3)}`,
    }, [
      el("button", { type: "button", className: "thumb", tabindex: "-1", title: playable ? t("play") : t("view"), onclick: () => openHit(hit) }, [
        thumb,
        badges,
        playable ? el("span", { className: "play-mark", "aria-hidden": "true", text: "▶" }) : null,
      ]),
      el("div", { className: "meta" }, [
        el("span", { className: "name", title: hit.path, text: hit.name }),
        el("span", { className: "score", title: t("score"), text: hit.score.toFixed(3) }),
      ]),
      seg.text ? el("p", { className: "snippet", text: seg.text }) : null,
      el("div", { className: "actions" }, [
        el("button", { type: "button", className: playable ? "play" : "view", text: playable ? "▶ " + t("play") : t("view"), onclick: () => openHit(hit) }),
        el("button", { type: "button", className: "like", text: t("more"), onclick: () => moreLike(hit) }),
        el("a", { href: hit.media_url, target: "_blank", rel: "noopener", text: t("open") }),
      ]),
    ]);
    node.addEventListener("keydown", (e) => cardKey(e, hit, node));
    return node;
  }

  function cardKey(e, hit, node) {
    if (e.target !== node || e.altKey || e.ctrlKey || e.metaKey) return;
    if (e.key === "Enter" || e.key === " ") { e.preventDefault(); openHit(hit); }
    else if (e.key === "m" || e.key === "M") { e.preventDefault(); moreLike(hit); }
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

  // -- viewer --------------------------------------------------------------------------
  let lastFocus = null;

  function openHit(hit) {
    const kind = hit.item_modality;
    const body = $("#viewer-body");
    body.replaceChildren();
    $("#viewer-title").textContent = hit.name;
    let info = hit.path;
    if (kind === "video" || kind === "audio") {
      const media = el(kind, { controls: true, preload: "metadata", src: hit.media_url });
      const start = hit.play_from || 0;
      media.addEventListener("loadedmetadata", () => {
        media.currentTime = start;
        media.play().catch(() => {});
      }, { once: true });
      body.append(media);
      if (hit.play_from) info += " · " + t("at", { t: fmtTime(hit.play_from) });
    } else if (kind === "image") {
      body.append(el("img", { src: hit.media_url, alt: hit.name }));
    } else {
      const seg = hit.segments[0] || {};
      body.append(el("pre", { className: "text", text: seg.text || "" }));
    }
    $("#viewer-info").textContent = info;
    lastFocus = document.activeElement;
    $("#viewer").hidden = false;
    $("#viewer-close").focus();
  }

  function closeViewer() {
    const viewer = $("#viewer");
    if (viewer.hidden) return false;
    for (const m of viewer.querySelectorAll("video, audio")) { m.pause(); m.removeAttribute("src"); m.load(); }
    viewer.hidden = true;
    $("#viewer-body").replaceChildren();
    if (lastFocus) lastFocus.focus();
    return true;
  }

  // -- query chips: a file, or "more like this" ----------------------------------------
  function setFile(file) {
    if (!file) return;
    clearChip();
    state.file = file;
    if (file.type.startsWith("image/")) state.fileUrl = URL.createObjectURL(file);
    updateChip();
    search();
  }

  function moreLike(hit) {
    clearChip();
    state.like = { id: hit.item_id, name: hit.name, thumb: hit.thumbnail_url };
    $("#q").value = "";
    updateChip();
    search();
    window.scrollTo({ top: 0, behavior: "smooth" });
  }

  function clearChip() {
    if (state.fileUrl) URL.revokeObjectURL(state.fileUrl);
    state.file = null;
    state.fileUrl = null;
    state.like = null;
    $("#file").value = "";
    updateChip();
  }

  function updateChip() {
    const chip = $("#chip");
    const img = $("#chip-image");
    if (state.file) {
      const isImage = state.file.type.startsWith("image/");
      $("#chip-label").textContent = t(isImage ? "imageQuery" : "fileQuery", { name: state.file.name || "…" });
      img.hidden = !state.fileUrl;
      if (state.fileUrl) img.src = state.fileUrl;
      chip.hidden = false;
    } else if (state.like) {
      $("#chip-label").textContent = t("moreLike", { name: state.like.name });
      img.hidden = !state.like.thumb;
      if (state.like.thumb) img.src = state.like.thumb + "?size=128";
      chip.hidden = false;
    } else {
      chip.hidden = true;
      img.removeAttribute("src");
    }
  }

  // -- drag and drop, paste ------------------------------------------------------------
  function fileFrom(dataTransfer) {
    if (!dataTransfer) return null;
    for (const f of dataTransfer.files || []) {
      if (/^(image|video|audio)\//.test(f.type) || !f.type) return f;
    }
    return null;
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
      if (file) { e.preventDefault(); setFile(file); }
    });
    document.addEventListener("paste", (e) => {
      const file = fileFrom(e.clipboardData);
      if (file) { e.preventDefault(); setFile(file); }
    });
  }

  // -- keyboard ------------------------------------------------------------------------
  function setupKeys() {
    document.addEventListener("keydown", (e) => {
      const typing = /^(INPUT|SELECT|TEXTAREA)$/.test(document.activeElement.tagName);
      if (e.key === "Escape") {
        if (closeViewer()) return;
        if (typing && document.activeElement.id === "q" && (state.file || state.like)) { clearChip(); return; }
      }
      if (e.key === "/" && !typing) { e.preventDefault(); $("#q").focus(); $("#q").select(); }
      if (e.key === "ArrowDown" && document.activeElement.id === "q") {
        const first = document.querySelector("#results .card");
        if (first) { e.preventDefault(); first.focus(); }
      }
    });
    $("#file-label").addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); $("#file").click(); }
    });
  }

  // -- library info --------------------------------------------------------------------
  let info = null;

  async function loadInfo() {
    try { info = await api("/api/info"); } catch (err) { info = null; }
    showLibraryInfo();
  }

  function showLibraryInfo() {
    if (!info) return;
    $("#library-info").textContent = t("libraryInfo", {
      items: t("items", { n: info.items }),
      name: info.library,
      model: info.model_id || info.model,
    });
  }

  // -- start ---------------------------------------------------------------------------
  function start() {
    $("#search-form").addEventListener("submit", (e) => { e.preventDefault(); if (state.like && $("#q").value.trim()) state.like = null; updateChip(); search(); });
    $("#file").addEventListener("change", (e) => setFile(e.target.files[0]));
    $("#chip-clear").addEventListener("click", () => { clearChip(); $("#q").focus(); });
    $("#viewer-close").addEventListener("click", closeViewer);
    $("#viewer").addEventListener("click", (e) => { if (e.target.id === "viewer") closeViewer(); });
    for (const b of document.querySelectorAll("[data-lang]")) {
      b.addEventListener("click", () => { localStorage.setItem("mmsearch.lang", b.dataset.lang); applyLanguage(b.dataset.lang); });
    }
    for (const id of ["#f-type", "#f-from", "#f-to", "#f-mode"]) $(id).addEventListener("change", () => { if (state.hits.length) search(); });
    setupDrop();
    setupKeys();
    applyLanguage(pickLanguage());
    loadInfo();
    const q = new URL(location.href).searchParams.get("q");
    if (q) { $("#q").value = q; search(); } else { $("#q").focus(); }
  }

  window.mmsearch = { search, setFile, state };
  start();
})();
