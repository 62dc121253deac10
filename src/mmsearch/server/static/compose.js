// The query as chips beside the text box: files (image, video, sound), words and "more like"
// an item, each with an editable weight and a remove button. The chips are the query that is
// sent: nothing is searched that is not shown here (or typed in the box when there are none).
// Items marked with thumbs up or down (relevance feedback) are chips too, sent as the
// search's like / unlike lists rather than as parts.

import { el } from "./dom.js";
import { t } from "./lang.js";

export const MEDIA_KINDS = ["image", "video", "audio"];

const EXTENSIONS = {
  image: ["jpg", "jpeg", "png", "gif", "webp", "bmp", "tif", "tiff", "heic", "heif", "avif"],
  video: ["mp4", "m4v", "mov", "mkv", "webm", "avi", "mpg", "mpeg", "3gp", "ts"],
  audio: ["mp3", "m4a", "aac", "wav", "flac", "ogg", "oga", "opus", "wma", "aif", "aiff"],
};
const CHIP_TEXT = {
  image: "chipImage", video: "chipVideo", audio: "chipAudio", text: "chipText", item: "chipItem",
  like: "chipLike", unlike: "chipUnlike",
};
const ICON = { video: "▶", audio: "♪", text: "“", item: "≈", like: "+", unlike: "−" };
const MAX_WEIGHT = 10;

// "image", "video" or "audio" for a file that can be a query; null for anything else.
export function kindOf(file) {
  const m = /^(image|video|audio)\//.exec(file.type || "");
  if (m) return m[1];
  if (file.type) return null;
  const ext = (String(file.name || "").split(".").pop() || "").toLowerCase();
  for (const [kind, list] of Object.entries(EXTENSIONS)) if (list.includes(ext)) return kind;
  return null;
}

function readDataUrl(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error || new Error("cannot read " + file.name));
    reader.readAsDataURL(file);
  });
}

export class Composer {
  // onChange(reason) is called after a weight edit or a removal (the page searches again);
  // onRender() after the chips were drawn.
  constructor(container, onChange, onRender) {
    this.container = container;
    this.onChange = onChange;
    this.onRender = onRender || (() => {});
    this.parts = [];
    this.feedback = []; // {id, kind: "like" | "unlike", name, value: item id, thumb}
    this.nextId = 1;
  }

  get empty() { return this.parts.length === 0; }

  hasMedia() { return this.parts.some((p) => p.kind !== "text"); }

  // Parts not yet part of a search that succeeded: the suspects when the server refuses one.
  unchecked() { return this.parts.filter((p) => !p.checked && p.kind !== "text"); }

  markChecked() { for (const p of this.parts) p.checked = true; }

  add(part) {
    this.parts.push(Object.assign({ id: this.nextId++, weight: 1, checked: false }, part));
    this.render();
  }

  addFile(file, kind) {
    const url = kind === "image" ? URL.createObjectURL(file) : null;
    this.add({ kind, name: file.name || "…", file, url, data: null });
  }

  addText(text) { this.add({ kind: "text", name: text, value: text, checked: true }); }

  addItem(hit) { this.add({ kind: "item", name: hit.name, value: hit.item_id, thumb: hit.thumbnail_url }); }

  remove(id) {
    const part = this.parts.find((p) => p.id === id);
    if (part && part.url) URL.revokeObjectURL(part.url);
    this.parts = this.parts.filter((p) => p.id !== id);
    this.feedback = this.feedback.filter((p) => p.id !== id);
    this.render();
  }

  clear() {
    for (const p of this.parts) if (p.url) URL.revokeObjectURL(p.url);
    this.parts = [];
    this.feedback = [];
    this.render();
  }

  // -- relevance feedback ---------------------------------------------------------------
  // "like" or "unlike" for an item marked so, else null.
  feedbackOf(itemId) {
    const mark = this.feedback.find((p) => p.value === itemId);
    return mark ? mark.kind : null;
  }

  // Marks a hit liked or disliked; marking it the same way again takes the mark off.
  setFeedback(hit, kind) {
    const was = this.feedbackOf(hit.item_id);
    this.feedback = this.feedback.filter((p) => p.value !== hit.item_id);
    if (was !== kind) {
      this.feedback.push({ id: this.nextId++, kind, name: hit.name, value: hit.item_id, thumb: hit.thumbnail_url });
    }
    this.render();
  }

  clearFeedback() {
    if (!this.feedback.length) return;
    this.feedback = [];
    this.render();
  }

  // Item ids marked "like" (or "unlike").
  marked(kind) { return this.feedback.filter((p) => p.kind === kind).map((p) => p.value); }

  // What the query holds, for a question: “red” + photo.png
  describe() {
    return this.parts.map((p) => (p.kind === "text" ? `“${p.value}”` : p.name)).join(" + ");
  }

  // The parts as /api/search wants them (files as data: URLs, read once).
  async requestParts() {
    const out = [];
    for (const p of this.parts) {
      if (p.kind === "text" || p.kind === "item") out.push({ kind: p.kind, value: p.value, weight: p.weight });
      else {
        if (p.data === null) p.data = await readDataUrl(p.file);
        out.push({ kind: p.kind, value: p.data, weight: p.weight });
      }
    }
    return out;
  }

  render() {
    const all = [...this.parts, ...this.feedback];
    this.container.replaceChildren(...all.map((p) => this.chip(p)));
    this.container.hidden = all.length === 0;
    this.onRender();
  }

  chip(part) {
    const label = t(CHIP_TEXT[part.kind], { name: part.name });
    const mark = part.kind === "like" || part.kind === "unlike";
    const picture = part.url || (part.thumb ? part.thumb + "?size=128" : null);
    let weight = null;
    if (!mark) {
      weight = el("input", {
        type: "number", className: "chip-weight", step: "0.5", min: String(-MAX_WEIGHT), max: String(MAX_WEIGHT),
        value: String(part.weight), "aria-label": t("weightOf", { name: part.name }), title: t("weightOf", { name: part.name }),
      });
      weight.addEventListener("change", () => this.setWeight(part, weight));
    }
    return el("span", { className: "chip chip-" + part.kind, role: "group", "aria-label": label, "data-part": String(part.id) }, [
      mark && picture ? el("span", { className: "chip-mark", "aria-hidden": "true", text: ICON[part.kind] }) : null,
      picture
        ? el("img", { src: picture, alt: "" })
        : el("span", { className: "chip-icon", "aria-hidden": "true", text: ICON[part.kind] || "•" }),
      el("span", { className: "chip-label", title: label, text: label }),
      weight,
      el("button", {
        type: "button", className: "chip-remove", text: "×",
        "aria-label": t("removePart", { name: part.name }), title: t("removePart", { name: part.name }),
        onclick: () => { this.remove(part.id); this.onChange("remove"); },
      }),
    ]);
  }

  setWeight(part, input) {
    const value = Number(input.value);
    if (input.value.trim() === "" || !Number.isFinite(value)) { input.value = String(part.weight); return; }
    part.weight = Math.max(-MAX_WEIGHT, Math.min(MAX_WEIGHT, value));
    input.value = String(part.weight);
    this.onChange("weight");
  }
}
