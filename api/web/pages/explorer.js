// The Correlation Explorer: everything stored under one correlation ID on one page.
import { ApiError, get, post } from "/ui/api.js";
import {
  attributeTable, card, empty, fmtClock, fmtCount, fmtMs, fmtTime, h, isoMs, panel, serviceColor,
} from "/ui/dom.js";
import { serviceGraph } from "/ui/graph.js";
import { renderWaterfall } from "/ui/waterfall.js";

const TABS = ["traces", "logs", "metrics", "errors", "insights"];

// Who called whom in this request: a child span in another service than its parent's.
export function requestFlow(context) {
  const spans = context.traces.flatMap((t) => t.spans);
  const byId = new Map(spans.map((s) => [`${s.trace_id}/${s.span_id}`, s]));
  const edges = new Map();
  for (const span of spans) {
    const parent = span.parent_span_id && byId.get(`${span.trace_id}/${span.parent_span_id}`);
    if (!parent || parent.service === span.service) continue;
    const key = `${parent.service}->${span.service}`;
    const edge = edges.get(key) || { source: parent.service, target: span.service, calls: 0, errors: 0 };
    edge.calls += 1;
    edge.errors += span.error ? 1 : 0;
    edges.set(key, edge);
  }
  const nodes = context.services.map((s) => ({
    id: s.name, color: serviceColor(s.name), error: s.errors > 0,
    label: `${s.name}\n${s.spans} spans${s.errors ? ` · ${s.errors} errors` : ""}`,
  }));
  const links = [...edges.values()].map((e) => ({
    ...e, label: `${e.calls} call${e.calls === 1 ? "" : "s"}${e.errors ? ` · ${e.errors} failed` : ""}`,
  }));
  return { nodes, edges: links };
}

function summaryCards(summary) {
  return h("div", { class: "cards", id: "summary" },
    card("Services", fmtCount(summary.service_count), { key: "services" }),
    card("Duration", fmtMs(summary.duration_ms), { key: "duration" }),
    card("Spans", fmtCount(summary.total_spans), { key: "spans" }),
    card("Logs", fmtCount(summary.total_logs), { key: "logs" }),
    card("Metrics", fmtCount(summary.total_metrics), { key: "metrics", hint: "exemplars linked to these traces" }),
    card("Errors", fmtCount(summary.error_count), {
      key: "errors", tone: summary.error_count ? "bad" : "good",
      hint: `${summary.error_spans} failed spans, ${summary.error_logs} error logs`,
    }));
}

function spanDetails(span) {
  if (!span) return empty("Click a span in the timeline or the table to see its attributes.");
  return h("div", { class: "details", id: "span-details" },
    h("h3", {}, span.name),
    h("p", { class: "muted" }, `${span.service} · ${span.kind} · ${fmtMs(span.duration_ms)} · ${span.status_code}`),
    span.status_message ? h("p", { class: "error-text" }, span.status_message) : null,
    h("h4", {}, "Span attributes"), attributeTable(span.attributes),
    span.events?.length ? [h("h4", {}, "Events"), span.events.map((e) =>
      h("div", { class: "event" }, h("strong", {}, e.name), " ", h("span", { class: "muted" }, fmtTime(e.timestamp)),
        attributeTable(e.attributes)))] : null,
    h("h4", {}, "Resource"), attributeTable(span.resource_attributes),
    h("p", { class: "muted mono" }, `trace ${span.trace_id} · span ${span.span_id}`));
}

function spanTable(context, onSelect) {
  const spans = context.traces.flatMap((t) => t.spans).sort((a, b) => isoMs(a.timestamp) - isoMs(b.timestamp));
  return h("table", { class: "grid", id: "span-table" },
    h("thead", {}, h("tr", {}, ["Start", "Service", "Operation", "Kind", "Duration", "Status"].map((c) => h("th", {}, c)))),
    h("tbody", {}, spans.map((s) => h("tr", { class: s.error ? "error clickable" : "clickable", onclick: () => onSelect(s) },
      h("td", { class: "mono nowrap" }, fmtClock(s.timestamp)),
      h("td", { class: "nowrap" }, h("span", { class: "dot", style: { background: serviceColor(s.service) } }), s.service),
      h("td", {}, s.name), h("td", {}, s.kind), h("td", { class: "num" }, fmtMs(s.duration_ms)),
      h("td", { class: "status" }, s.error ? h("span", { class: "badge bad", title: s.status_message }, s.status_message || "Error")
        : s.status_code)))));
}

function logTable(logs) {
  if (!logs.length) return empty("No logs are stored under this correlation ID.");
  return h("table", { class: "grid", id: "log-table" },
    h("thead", {}, h("tr", {}, ["Time", "Level", "Service", "Body", "Attributes"].map((c) => h("th", {}, c)))),
    h("tbody", {}, logs.map((l) => h("tr", { class: l.error ? "error" : "" },
      h("td", { class: "mono nowrap" }, fmtClock(l.timestamp)),
      h("td", {}, h("span", { class: `badge level-${l.level.toLowerCase()}` }, l.level)),
      h("td", {}, l.service), h("td", { class: "body" }, l.body),
      h("td", { class: "mono small" }, Object.entries(l.attributes || {}).map(([k, v]) => `${k}=${v}`).join("  "))))));
}

function metricTable(metrics) {
  if (!metrics.length) return empty("No metric exemplars point at these traces.");
  return h("table", { class: "grid", id: "metric-table" },
    h("thead", {}, h("tr", {}, ["Time", "Metric", "Type", "Service", "Value", "Span"].map((c) => h("th", {}, c)))),
    h("tbody", {}, metrics.map((m) => h("tr", {},
      h("td", { class: "mono nowrap" }, fmtClock(m.timestamp)), h("td", {}, m.metric_name), h("td", {}, m.metric_type),
      h("td", {}, m.service), h("td", { class: "num" }, m.value === null ? "–" : String(m.value)),
      h("td", { class: "mono small" }, m.span_id)))));
}

function errorList(errors) {
  if (!errors.length) return empty("Nothing failed in this request.");
  return h("ul", { class: "errors", id: "error-list" }, errors.map((e) => h("li", {},
    h("span", { class: "badge bad" }, e.type), " ", h("strong", {}, e.service), " · ", e.description,
    e.message ? h("div", { class: "error-text" }, e.message) : null,
    h("div", { class: "muted small" }, fmtTime(e.timestamp)))));
}

function insights(analysis) {
  if (analysis instanceof Error) return h("p", { class: "error-text" }, `The analysis failed: ${analysis.message}`);
  if (!analysis) return h("p", { class: "muted" }, "Analysing…");
  const cause = analysis.root_cause;
  const origin = analysis.error_origin;
  const explanation = analysis.explanation;
  return h("div", { class: "insights", id: "insights" },
    h("div", { class: "insight-cards" },
      card("Root cause", cause ? `${cause.service} · ${cause.operation}` : "none found",
        { tone: cause?.kind === "error" ? "bad" : "", key: "root-cause" }),
      card("Kind", cause ? cause.kind : "–"),
      card("Confidence", cause ? `${Math.round(cause.confidence * 100)}%` : "–"),
      card("Critical path", fmtMs(analysis.critical_path_ms))),
    explanation ? h("div", { class: "explanation" }, h("h4", {}, "Explanation"), h("p", {}, explanation.summary),
      explanation.recommendations?.length ? h("ul", {}, explanation.recommendations.map((r) => h("li", {}, r))) : null,
      h("p", { class: "muted small" }, `explained by ${explanation.explained_by}${explanation.model ? ` (${explanation.model})` : ""}`))
      : null,
    origin ? h("div", {}, h("h4", {}, "Error origin"),
      h("p", {}, h("strong", {}, origin.service), ` · ${origin.operation} · depth ${origin.depth}`),
      origin.message ? h("p", { class: "error-text" }, origin.message) : null,
      origin.logs?.length ? h("ul", { class: "errors" }, origin.logs.map((l) => h("li", {},
        h("span", { class: `badge level-${l.level.toLowerCase()}` }, l.level), " ", l.body))) : null) : null,
    h("h4", {}, "Critical path (outlined on the timeline)"),
    h("table", { class: "grid" }, h("thead", {}, h("tr", {}, ["Service", "Operation", "Self time", "Share"].map((c) => h("th", {}, c)))),
      h("tbody", {}, analysis.critical_path.map((step) => h("tr", { class: step.error ? "error" : "" },
        h("td", {}, h("span", { class: "dot", style: { background: serviceColor(step.service) } }), step.service),
        h("td", {}, step.operation), h("td", { class: "num" }, fmtMs(step.self_time_ms)),
        h("td", {}, h("div", { class: "share" }, h("div", { style: { width: `${Math.round(step.share * 100)}%` } }),
          h("span", {}, `${Math.round(step.share * 100)}%`))))))));
}

export async function explorerPage({ main, params, onLeave }, encodedId) {
  const cid = decodeURIComponent(encodedId);
  let context;
  try {
    context = await get(`/api/v1/correlate/${encodeURIComponent(cid)}`);
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      main.replaceChildren(h("section", { class: "failure" }, h("h1", {}, "No such correlation"),
        h("p", {}, `Nothing is stored under correlation ID ${cid} (yet). `,
          h("a", { href: "/correlations", "data-link": true }, "Browse recent correlations"), ".")));
      return;
    }
    throw error;
  }
  const { summary } = context;
  let tab = TABS.includes(params.get("tab")) ? params.get("tab") : "traces";
  let selected = null;
  let analysis = null;

  const waterfallBox = h("div", { class: "waterfall", id: "waterfall" });
  const flowBox = h("div", { class: "graph", id: "flow" });
  const tabBody = h("div", { class: "tab-body" });
  const tabBar = h("nav", { class: "tabs", role: "tablist" });
  const select = (span) => { selected = span; waterfall.select(span); tab = "traces"; drawTabs(); };

  function drawTabs() {
    const counts = { traces: summary.total_spans, logs: summary.total_logs, metrics: summary.total_metrics,
      errors: summary.error_count, insights: null };
    tabBar.replaceChildren(...TABS.map((name) => h("button", {
      type: "button", role: "tab", class: `tab ${name === tab ? "active" : ""} ${name === "errors" && counts.errors ? "bad" : ""}`,
      "aria-selected": name === tab ? "true" : "false", dataset: { tab: name },
      onclick: () => { tab = name; drawTabs(); },
    }, name[0].toUpperCase() + name.slice(1), counts[name] === null ? null : h("span", { class: "count" }, counts[name]))));
    const bodies = {
      traces: () => h("div", { class: "split" }, h("div", { class: "scroll" }, spanTable(context, select)),
        h("div", { class: "scroll side" }, spanDetails(selected))),
      logs: () => logTable(context.logs),
      metrics: () => metricTable(context.metrics),
      errors: () => errorList(context.errors),
      insights: () => insights(analysis),
    };
    tabBody.replaceChildren(bodies[tab]());
  }

  const failed = summary.error_count > 0;
  main.replaceChildren(
    h("section", { class: "page-head" },
      h("div", {}, h("div", { class: "eyebrow" }, "Correlation"),
        h("h1", { class: "mono", id: "correlation-id" }, context.correlation_id)),
      h("div", { class: "head-meta" },
        h("span", { class: `badge big ${failed ? "bad" : "good"}` }, failed ? "Failed" : "OK"),
        h("span", { class: "muted" }, `${fmtTime(context.time_range.start)} → ${fmtTime(context.time_range.end)}`),
        summary.truncated ? h("span", { class: "badge warn" }, "truncated: caps reached") : null)),
    summaryCards(summary),
    h("div", { class: "explorer-grid" },
      h("div", { class: "stack" },
        panel("Timeline", waterfallBox),
        h("section", { class: "panel" }, tabBar, tabBody)),
      h("div", { class: "stack" },
        panel("Service flow", h("div", {}, flowBox, h("div", { class: "legend", id: "flow-services" },
          context.services.map((s) => h("span", { class: `chip ${s.errors ? "bad" : ""}`, dataset: { service: s.name } },
            h("span", { class: "dot", style: { background: serviceColor(s.name) } }), s.name))))),
        panel("Errors", errorList(context.errors)))));

  const waterfall = renderWaterfall(waterfallBox, context, { onSelect: (span) => { selected = span; tab = "traces"; drawTabs(); } });
  const flow = requestFlow(context);
  const graph = serviceGraph(flowBox, flow.nodes, flow.edges);
  drawTabs();
  const controller = new AbortController();
  onLeave(() => { controller.abort(); graph.destroy(); waterfall.destroy(); });

  try {
    analysis = await post("/api/v1/rca/enhanced", { correlation_id: context.correlation_id }, controller.signal);
    waterfall.highlight(new Set(analysis.critical_path.map((step) => step.span_id)));
  } catch (error) {
    if (controller.signal.aborted) return;
    analysis = error;
  }
  drawTabs();
}
