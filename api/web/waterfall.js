// The timeline of one correlation: every span as a bar on one time axis (children indented
// under their parents, errors red, the critical path outlined) and every log as a mark on its
// span's row. Drag across the bars to zoom into a time range; hover for details.
import { fmtMs, h, hideTooltip, isoMs, serviceColor, showTooltip } from "/ui/dom.js";

const INDENT_PX = 14;
const TICKS = 6;

// Spans in tree order (depth-first, children by start) with their depth.
export function spanTree(spans) {
  const byId = new Map(spans.map((s) => [`${s.trace_id}/${s.span_id}`, s]));
  const children = new Map();
  const roots = [];
  for (const span of spans) {
    const parent = span.parent_span_id && byId.get(`${span.trace_id}/${span.parent_span_id}`);
    if (parent) {
      const key = `${parent.trace_id}/${parent.span_id}`;
      if (!children.has(key)) children.set(key, []);
      children.get(key).push(span);
    } else {
      roots.push(span);
    }
  }
  const byStart = (a, b) => a.startMs - b.startMs;
  const out = [];
  const walk = (span, depth) => {
    out.push({ span, depth });
    for (const child of (children.get(`${span.trace_id}/${span.span_id}`) || []).sort(byStart)) walk(child, depth + 1);
  };
  for (const root of roots.sort(byStart)) walk(root, 0);
  return out;
}

function spanTip(span, t0) {
  return h("div", {},
    h("div", { class: "tip-title" }, span.name),
    h("div", {}, h("span", { class: "dot", style: { background: serviceColor(span.service) } }), span.service),
    h("div", {}, `duration ${fmtMs(span.duration_ms)} · starts at +${fmtMs(span.startMs - t0)}`),
    h("div", {}, `kind ${span.kind || "–"} · status ${span.status_code || "Unset"}`),
    span.status_message ? h("div", { class: "tip-error" }, span.status_message) : null,
    h("div", { class: "muted" }, `span ${span.span_id}`));
}

function logTip(log, t0) {
  return h("div", {},
    h("div", { class: "tip-title" }, `${log.level} · ${log.service}`),
    h("div", {}, `at +${fmtMs(log.startMs - t0)}`),
    h("div", { class: "tip-body" }, log.body.length > 300 ? `${log.body.slice(0, 299)}…` : log.body));
}

export function renderWaterfall(container, context, { onSelect, critical: criticalIds = new Set() } = {}) {
  const spans = context.traces.flatMap((t) => t.spans).map((s) => ({ ...s, startMs: isoMs(s.timestamp) }));
  const logs = context.logs.map((l) => ({ ...l, startMs: isoMs(l.timestamp) }));
  const rows = spanTree(spans);
  const starts = [...spans.map((s) => s.startMs), ...logs.map((l) => l.startMs)];
  const ends = [...spans.map((s) => s.startMs + s.duration_ms), ...starts];
  const full = [Math.min(...starts), Math.max(...ends)];
  if (full[1] <= full[0]) full[1] = full[0] + 1;
  const logsBySpan = new Map();
  const loose = [];
  const known = new Set(spans.map((s) => `${s.trace_id}/${s.span_id}`));
  for (const log of logs) {
    const key = `${log.trace_id}/${log.span_id}`;
    if (log.span_id && known.has(key)) {
      if (!logsBySpan.has(key)) logsBySpan.set(key, []);
      logsBySpan.get(key).push(log);
    } else {
      loose.push(log);
    }
  }
  let view = [...full];
  let selected = null;
  let critical = criticalIds;

  const pct = (ms) => ((ms - view[0]) / (view[1] - view[0])) * 100;

  function axis() {
    const ticks = [];
    for (let i = 0; i <= TICKS; i += 1) {
      const at = view[0] + ((view[1] - view[0]) * i) / TICKS;
      ticks.push(h("span", { class: "wf-tick", style: { left: `${(i / TICKS) * 100}%` } }, fmtMs(at - full[0])));
    }
    return h("div", { class: "wf-row wf-axis" }, h("div", { class: "wf-label" }, "Service · operation"),
      h("div", { class: "wf-track" }, ticks));
  }

  function logMarks(list) {
    return list.filter((l) => l.startMs >= view[0] && l.startMs <= view[1]).map((log) => h("span", {
      class: `wf-log ${log.error ? "error" : ""}`, style: { left: `${pct(log.startMs)}%` }, dataset: { log: "" },
      onmousemove: (e) => { e.stopPropagation(); showTooltip(e, logTip(log, full[0])); },
      onmouseleave: hideTooltip,
    }));
  }

  function spanRow({ span, depth }) {
    const key = `${span.trace_id}/${span.span_id}`;
    const left = Math.max(0, pct(span.startMs));
    const right = Math.min(100, pct(span.startMs + span.duration_ms));
    const visible = right >= 0 && left <= 100 && right >= left;
    const classes = ["wf-row", "wf-span", span.error ? "error" : "", critical.has(span.span_id) ? "critical" : "",
      selected === key ? "selected" : ""].join(" ");
    const bar = visible ? h("div", {
      class: "wf-bar", style: { left: `${left}%`, width: `max(2px, ${right - left}%)`,
        background: span.error ? "var(--error)" : serviceColor(span.service) },
    }) : null;
    // Past the track's end the duration goes inside the bar's right end.
    const inside = right > 88 && right - left > 12;
    const label = h("span", { class: `wf-duration ${inside ? "inside" : ""}`,
      style: inside ? { right: `calc(${100 - right}% + 6px)` } : { left: `calc(${right}% + 6px)` } }, fmtMs(span.duration_ms));
    return h("div", {
      class: classes, dataset: { spanId: span.span_id, service: span.service, error: span.error ? "true" : "false" },
      onclick: () => { selected = key; draw(); onSelect?.(span); },
      onmousemove: (e) => showTooltip(e, spanTip(span, full[0])),
      onmouseleave: hideTooltip,
    },
    h("div", { class: "wf-label", style: { paddingLeft: `${8 + depth * INDENT_PX}px` }, title: `${span.service} · ${span.name}` },
      h("span", { class: "dot", style: { background: serviceColor(span.service) } }),
      h("span", { class: "wf-service" }, span.service), h("span", { class: "wf-name" }, span.name),
      span.error ? h("span", { class: "wf-flag" }, "error") : null),
    h("div", { class: "wf-track" }, bar, visible ? label : null, logMarks(logsBySpan.get(key) || [])));
  }

  function draw() {
    const body = h("div", { class: "wf-body" }, rows.map(spanRow));
    if (loose.length) {
      body.append(h("div", { class: "wf-row wf-loose" },
        h("div", { class: "wf-label" }, h("span", { class: "wf-name muted" }, `${loose.length} logs outside any span`)),
        h("div", { class: "wf-track" }, logMarks(loose))));
    }
    const zoomed = view[0] !== full[0] || view[1] !== full[1];
    const reset = h("button", { type: "button", class: "small", disabled: !zoomed,
      onclick: () => { view = [...full]; draw(); } }, "Reset zoom");
    container.replaceChildren(
      h("div", { class: "wf-hint" }, h("span", { class: "muted" },
        `${rows.length} spans · ${logs.length} logs · drag across the bars to zoom`,
        h("span", { class: "wf-legend" },
          h("span", {}, h("i", { style: { background: "var(--error)" } }), "error"),
          h("span", {}, h("i", { style: { boxShadow: "0 0 0 1.5px #111827" } }), "critical path"),
          h("span", {}, h("i", { style: { background: "#0284c7", width: "4px" } }), "log"))), reset),
      axis(), body);
    enableZoom(body);
  }

  // Drag on the bars' side: the dragged range becomes the view.
  let dragFrom = null;
  let band = null;
  let body = null;
  const trackBox = () => body.querySelector(".wf-track").getBoundingClientRect();
  function enableZoom(target) {
    body = target;
    body.addEventListener("mousedown", (e) => {
      if (e.clientX < trackBox().left || e.button !== 0) return;
      dragFrom = e.clientX;
      band = h("div", { class: "wf-band" });
      body.append(band);
    });
  }
  const onMove = (e) => {
    if (dragFrom === null) return;
    const box = trackBox();
    const a = Math.max(box.left, Math.min(dragFrom, e.clientX));
    const b = Math.min(box.right, Math.max(dragFrom, e.clientX));
    Object.assign(band.style, { left: `${a - body.getBoundingClientRect().left}px`, width: `${b - a}px` });
  };
  const onUp = (e) => {
    if (dragFrom === null) return;
    const box = trackBox();
    const a = Math.max(0, Math.min(dragFrom, e.clientX) - box.left) / box.width;
    const b = Math.min(box.width, Math.max(dragFrom, e.clientX) - box.left) / box.width;
    dragFrom = null;
    band?.remove();
    if (b - a > 0.01) {
      const width = view[1] - view[0];
      view = [view[0] + a * width, view[0] + b * width];
      draw();
    }
  };
  window.addEventListener("mousemove", onMove);
  window.addEventListener("mouseup", onUp);

  draw();
  return {
    select(span) { selected = `${span.trace_id}/${span.span_id}`; draw(); },
    highlight(ids) { critical = ids; draw(); },
    destroy() {
      window.removeEventListener("mousemove", onMove);
      window.removeEventListener("mouseup", onUp);
    },
  };
}
