// Recent correlations: the latest, failing or slowest correlation IDs, filtered by service,
// time range and "has errors" — the way into the explorer without an ID at hand.
import { get } from "/ui/api.js";
import { correlationHref, empty, fmtAgo, fmtCount, fmtMs, h, serviceColor } from "/ui/dom.js";

export const RANGES = { "15m": 15, "1h": 60, "6h": 360, "24h": 1440, "7d": 10080 };
const SORTS = { recent: "Latest", failing: "Failing", slow: "Slowest" };

export function rangeStart(range) {
  return new Date(Date.now() - (RANGES[range] || 60) * 60000).toISOString();
}

function row(c) {
  return h("tr", { class: c.error_count ? "error" : "", dataset: { correlationId: c.correlation_id } },
    h("td", {}, h("a", { href: correlationHref(c.correlation_id), "data-link": true, class: "mono" }, c.correlation_id)),
    h("td", {}, c.services.map((s) => h("span", { class: "chip small" },
      h("span", { class: "dot", style: { background: serviceColor(s) } }), s))),
    h("td", { title: c.last_seen }, fmtAgo(c.last_seen)),
    h("td", { class: "num" }, fmtMs(c.duration_ms)),
    h("td", { class: "num" }, fmtCount(c.span_count)),
    h("td", { class: "num" }, fmtCount(c.log_count)),
    h("td", { class: "num" }, c.error_count ? h("span", { class: "badge bad" }, c.error_count) : h("span", { class: "muted" }, "0")));
}

export async function correlationsPage({ main, params, navigate }) {
  const sort = SORTS[params.get("sort")] ? params.get("sort") : "recent";
  const range = RANGES[params.get("range")] ? params.get("range") : "1h";
  const service = params.get("service") || "";
  const errorsOnly = params.get("errors") === "true";
  const [listing, services] = await Promise.all([
    get("/api/v1/correlations", { sort, service, has_errors: errorsOnly ? "true" : "", start: rangeStart(range), limit: 100 }),
    get("/api/v1/services", { start: rangeStart(range), limit: 200 }),
  ]);
  const go = (changes) => {
    const next = new URLSearchParams({ sort, range, service, errors: errorsOnly ? "true" : "", ...changes });
    for (const [k, v] of [...next.entries()]) if (!v) next.delete(k);
    navigate(`/correlations?${next}`);
  };
  const names = new Set(services.services.map((s) => s.service));
  if (service) names.add(service);
  const filters = h("form", { class: "filters", id: "filters", onsubmit: (e) => e.preventDefault() },
    h("div", { class: "segmented" }, Object.entries(SORTS).map(([key, label]) => h("button", {
      type: "button", class: key === sort ? "active" : "", dataset: { sort: key }, onclick: () => go({ sort: key }),
    }, label))),
    h("label", {}, "Service ", h("select", { name: "service", onchange: (e) => go({ service: e.target.value }) },
      h("option", { value: "" }, "All services"),
      [...names].sort().map((n) => h("option", { value: n, selected: n === service }, n)))),
    h("label", {}, "Range ", h("select", { name: "range", onchange: (e) => go({ range: e.target.value }) },
      Object.keys(RANGES).map((r) => h("option", { value: r, selected: r === range }, `last ${r}`)))),
    h("label", { class: "check" }, h("input", { type: "checkbox", name: "errors", checked: errorsOnly,
      onchange: (e) => go({ errors: e.target.checked ? "true" : "" }) }), " Has errors"));
  const items = listing.correlations;
  main.replaceChildren(
    h("section", { class: "page-head" }, h("div", {}, h("div", { class: "eyebrow" }, "Correlations"),
      h("h1", {}, `${SORTS[sort]} correlations`)),
    h("div", { class: "head-meta muted" }, `${items.length}${listing.next_offset ? "+" : ""} in the last ${range}`)),
    filters,
    h("section", { class: "panel" }, items.length ? h("table", { class: "grid", id: "correlation-list" },
      h("thead", {}, h("tr", {}, ["Correlation ID", "Services", "Last seen", "Duration", "Spans", "Logs", "Errors"]
        .map((c) => h("th", {}, c)))),
      h("tbody", {}, items.map(row))) : empty("No correlation IDs match these filters.")));
}
