// The dashboard: traces, services, error rate and latency over a chosen window, small charts
// of each service's throughput, error rate and p95 latency, and the natural-language query box.
import { ApiError, get, post } from "/ui/api.js";
import { card, empty, fmtCount, fmtMs, fmtPct, h, isoMs, panel, serviceColor } from "/ui/dom.js";
import { timeChart } from "/ui/charts.js";
import { RANGES, rangeStart } from "/ui/pages/correlations.js";

const CHARTS = [
  ["throughput", "Spans per minute", (v) => (v >= 1000 ? `${(v / 1000).toFixed(1)}k` : v.toFixed(0))],
  ["error_rate", "Error rate", (v) => fmtPct(v)],
  ["latency_p95_ms", "p95 latency", (v) => fmtMs(v)],
];

function chartData(trend) {
  const times = [...new Set(trend.services.flatMap((s) => s.points.map((p) => p.timestamp)))].sort();
  const index = new Map(times.map((t, i) => [t, i]));
  const series = trend.services.map((s) => {
    const values = new Array(times.length).fill(null);
    for (const p of s.points) values[index.get(p.timestamp)] = p.value;
    return { label: s.service, color: serviceColor(s.service), values };
  });
  return { times: times.map((t) => isoMs(t) / 1000), series };
}

function nlqBox() {
  const out = h("div", { class: "nlq-answer", id: "nlq-answer" });
  const input = h("input", { type: "text", name: "question", placeholder: "Ask: which service had the most errors in the last hour?",
    "aria-label": "Question" });
  const form = h("form", { class: "nlq", id: "nlq", onsubmit: async (e) => {
    e.preventDefault();
    if (!input.value.trim()) return;
    out.replaceChildren(h("p", { class: "muted" }, "Thinking…"));
    try {
      const answer = await post("/api/v1/nlq", { question: input.value.trim() });
      out.replaceChildren(h("p", { class: "muted mono small" }, answer.executed_sql),
        answer.rows.length ? h("table", { class: "grid" }, h("thead", {}, h("tr", {}, answer.columns.map((c) => h("th", {}, c)))),
          h("tbody", {}, answer.rows.map((r) => h("tr", {}, answer.columns.map((c) => h("td", {}, String(r[c]))))))) : empty("No rows."));
    } catch (error) {
      const text = error instanceof ApiError && error.body?.error === "no_model"
        ? "No language model is configured for this API (see the OLLYSTACK_LLM_* settings)." : error.message;
      out.replaceChildren(h("p", { class: "error-text" }, text));
    }
  } }, input, h("button", { type: "submit" }, "Ask"));
  return h("div", {}, form, out);
}

export async function dashboardPage({ main, params, navigate, onLeave }) {
  const range = RANGES[params.get("range")] ? params.get("range") : "15m";
  const start = rangeStart(range);
  const [stats, map, ...trends] = await Promise.all([
    get("/api/v1/services", { start, limit: 200 }), get("/api/v1/service-map", { start, limit: 1000 }),
    ...CHARTS.map(([metric]) => get("/api/v1/trends", { start, metric, limit: 12 }))]);
  // A trace starts at a service nobody calls: those services' requests count the traces.
  const called = new Set(map.edges.map((e) => e.callee));
  const entries = stats.services.filter((s) => !called.has(s.service));
  const traces = entries.reduce((n, s) => n + s.requests, 0);
  const requests = stats.services.reduce((n, s) => n + s.requests, 0);
  const errors = stats.services.reduce((n, s) => n + s.errors, 0);
  const weighted = (key) => {
    const known = entries.filter((s) => s[key] !== null);
    const total = known.reduce((n, s) => n + s.requests, 0);
    return total ? known.reduce((n, s) => n + s[key] * s.requests, 0) / total : null;
  };
  const charts = [];
  const chartPanels = CHARTS.map(([metric, title, format], i) => {
    const box = h("div", { class: "chart", dataset: { metric } });
    return { box, panel: panel(title, box), data: chartData(trends[i]), format };
  });
  main.replaceChildren(
    h("section", { class: "page-head" }, h("div", {}, h("div", { class: "eyebrow" }, "Overview"), h("h1", {}, "Dashboard")),
      h("label", { class: "head-meta" }, "Window ", h("select", { onchange: (e) => navigate(`/dashboard?range=${e.target.value}`) },
        Object.keys(RANGES).map((r) => h("option", { value: r, selected: r === range }, `last ${r}`))))),
    h("div", { class: "cards", id: "overview" },
      card("Traces", fmtCount(traces), { key: "traces", hint: "requests of the services no other service calls" }),
      card("Services", fmtCount(stats.services.length), { key: "services" }),
      card("Error rate", fmtPct(requests ? errors / requests : null), { key: "error-rate", tone: errors ? "bad" : "good",
        hint: "failed requests over all requests (root, server and consumer spans)" }),
      card("Latency p50", fmtMs(weighted("p50_ms")), { key: "p50", hint: "of the entry services, weighted by requests" }),
      card("Latency p95", fmtMs(weighted("p95_ms")), { key: "p95", hint: "of the entry services, weighted by requests" })),
    h("div", { class: "chart-grid" }, chartPanels.map((c) => c.panel)),
    panel("Ask a question", nlqBox()));
  for (const c of chartPanels) {
    const window = [isoMs(trends[0].time_range.start) / 1000, isoMs(trends[0].time_range.end) / 1000];
    if (c.data.times.length) charts.push(timeChart(c.box, { times: c.data.times, series: c.data.series, format: c.format, window }));
    else c.box.replaceChildren(empty("No data in this window."));
  }
  onLeave(() => charts.forEach((c) => c.destroy()));
}
