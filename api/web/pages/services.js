// The service map: every service with its request rate, error rate and p95 latency, the calls
// between them; a click opens the service's recent failing correlations.
import { get } from "/ui/api.js";
import { empty, fmtCount, fmtMs, fmtPct, h, panel, serviceColor } from "/ui/dom.js";
import { serviceGraph } from "/ui/graph.js";
import { RANGES, rangeStart } from "/ui/pages/correlations.js";

const failingHref = (service, range) => `/correlations?sort=failing&errors=true&range=${range}&service=${encodeURIComponent(service)}`;

export async function servicesPage({ main, params, navigate, onLeave }) {
  const range = RANGES[params.get("range")] ? params.get("range") : "1h";
  const start = rangeStart(range);
  const [stats, map] = await Promise.all([
    get("/api/v1/services", { start, limit: 200 }), get("/api/v1/service-map", { start, limit: 1000 })]);
  const minutes = RANGES[range];
  const byName = new Map(stats.services.map((s) => [s.service, s]));
  const names = new Set([...byName.keys(), ...map.nodes.map((n) => n.service)]);
  const kinds = new Map(map.nodes.map((n) => [n.service, n.kind]));
  const nodes = [...names].sort().map((name) => {
    const s = byName.get(name);
    const rate = s ? s.requests / (minutes * 60) : 0;
    const label = s ? `${name}\n${rate.toFixed(rate < 10 ? 2 : 0)} req/s · ${fmtPct(s.error_rate)} err\np95 ${fmtMs(s.p95_ms)}`
      : `${name}\n${kinds.get(name) || ""}`;
    return { id: name, label, color: serviceColor(name), kind: kinds.get(name) || "service", error: Boolean(s && s.errors) };
  });
  const edges = map.edges.map((e) => ({ source: e.caller, target: e.callee, calls: e.calls, errors: e.errors,
    label: `${fmtCount(e.calls)} calls${e.errors ? ` · ${fmtCount(e.errors)} errors` : ""}` }));
  const graphBox = h("div", { class: "graph tall", id: "service-map" });
  const table = stats.services.length ? h("table", { class: "grid", id: "service-table" },
    h("thead", {}, h("tr", {}, ["Service", "Requests", "Requests/s", "Error rate", "p50", "p95", "p99", ""].map((c) => h("th", {}, c)))),
    h("tbody", {}, stats.services.map((s) => h("tr", { class: s.errors ? "error" : "" },
      h("td", {}, h("span", { class: "dot", style: { background: serviceColor(s.service) } }), s.service),
      h("td", { class: "num" }, fmtCount(s.requests)),
      h("td", { class: "num", title: `averaged over the last ${range}` }, (s.requests / (minutes * 60)).toFixed(2)),
      h("td", { class: "num" }, s.errors ? h("span", { class: "badge bad" }, fmtPct(s.error_rate)) : fmtPct(s.error_rate)),
      h("td", { class: "num" }, fmtMs(s.p50_ms)), h("td", { class: "num" }, fmtMs(s.p95_ms)), h("td", { class: "num" }, fmtMs(s.p99_ms)),
      h("td", {}, h("a", { href: failingHref(s.service, range), "data-link": true }, "failing correlations →"))))))
    : empty("No requests in this range.");
  main.replaceChildren(
    h("section", { class: "page-head" }, h("div", {}, h("div", { class: "eyebrow" }, "Services"), h("h1", {}, "Service map")),
      h("label", { class: "head-meta" }, "Range ", h("select", { onchange: (e) => navigate(`/services?range=${e.target.value}`) },
        Object.keys(RANGES).map((r) => h("option", { value: r, selected: r === range }, `last ${r}`))))),
    panel(`Calls between services, last ${range} (click a service for its failing correlations)`, graphBox),
    panel("Services", table));
  if (nodes.length) {
    const graph = serviceGraph(graphBox, nodes, edges, { onTap: (node) => navigate(failingHref(node.id, range)) });
    onLeave(() => graph.destroy());
  } else {
    graphBox.replaceChildren(empty("No calls in this range."));
  }
}
