// DOM building and formatting shared by the pages. Every text from the API goes through
// text nodes (never innerHTML): spans and logs hold whatever clients sent.

export function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "style" && typeof value === "object") Object.assign(node.style, value);
    else if (name.startsWith("on") && typeof value === "function") node.addEventListener(name.slice(2), value);
    else if (name === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// Stable colours per service, so one service has one colour on every page.
const PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#9c755f", "#ff9da7",
  "#86bcb6", "#8cd17d", "#a0cbe8", "#d4a6c8"];
export function serviceColor(name) {
  let hash = 0;
  for (const ch of String(name)) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return PALETTE[hash % PALETTE.length];
}

// ISO-8601 with nanoseconds -> epoch milliseconds with the fraction kept.
export function isoMs(iso) {
  if (!iso) return NaN;
  const match = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?Z$/.exec(iso);
  if (!match) return Date.parse(iso);
  return Date.parse(`${match[1]}Z`) + (match[2] ? Number(`0.${match[2]}`) * 1000 : 0);
}

export function fmtMs(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "–";
  if (ms >= 60000) return `${(ms / 60000).toFixed(1)} min`;
  if (ms >= 1000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms >= 10) return `${ms.toFixed(1)} ms`;
  if (ms >= 1) return `${ms.toFixed(2)} ms`;
  return `${Math.round(ms * 1000)} µs`;
}

export function fmtTime(iso) {
  const ms = isoMs(iso);
  if (Number.isNaN(ms)) return "–";
  const d = new Date(ms);
  return `${d.toLocaleDateString(undefined, { month: "short", day: "numeric" })} `
    + `${d.toLocaleTimeString(undefined, { hour12: false })}.${String(d.getMilliseconds()).padStart(3, "0")}`;
}

// The time of day only, with milliseconds: rows of one request share their date.
export function fmtClock(iso) {
  const ms = isoMs(iso);
  if (Number.isNaN(ms)) return "–";
  const d = new Date(ms);
  return `${d.toLocaleTimeString(undefined, { hour12: false })}.${String(d.getMilliseconds()).padStart(3, "0")}`;
}

export function fmtAgo(iso) {
  const s = Math.max(0, (Date.now() - isoMs(iso)) / 1000);
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

export const fmtPct = (rate) => (rate === null || rate === undefined ? "–" : `${(rate * 100).toFixed(rate < 0.01 && rate > 0 ? 2 : 1)}%`);
export const fmtCount = (n) => (n === null || n === undefined ? "–" : Number(n).toLocaleString());

export const correlationHref = (cid, tab) =>
  `/correlate/${encodeURIComponent(cid)}${tab ? `?tab=${tab}` : ""}`;

export function card(label, value, { tone = "", hint = "", key = "" } = {}) {
  return h("div", { class: `card ${tone}`, title: hint || null, dataset: key ? { card: key } : {} },
    h("div", { class: "card-label" }, label), h("div", { class: "card-value" }, value));
}

export function panel(title, body, ...tools) {
  return h("section", { class: "panel" },
    h("header", { class: "panel-head" }, h("h2", {}, title), h("div", { class: "panel-tools" }, tools)), body);
}

export function empty(text) {
  return h("p", { class: "empty" }, text);
}

export function attributeTable(attrs) {
  const entries = Object.entries(attrs || {}).sort(([a], [b]) => a.localeCompare(b));
  if (!entries.length) return empty("No attributes.");
  return h("table", { class: "attrs" }, h("tbody", {}, entries.map(([k, v]) =>
    h("tr", {}, h("th", {}, k), h("td", {}, typeof v === "object" ? JSON.stringify(v) : String(v))))));
}

// A hover card that follows the pointer; content is a DOM node.
export function showTooltip(event, content) {
  const tip = document.getElementById("tooltip");
  tip.replaceChildren(content);
  tip.hidden = false;
  const x = Math.min(event.clientX + 14, window.innerWidth - tip.offsetWidth - 8);
  const y = Math.min(event.clientY + 14, window.innerHeight - tip.offsetHeight - 8);
  tip.style.left = `${x}px`;
  tip.style.top = `${y}px`;
}

export function hideTooltip() {
  document.getElementById("tooltip").hidden = true;
}
