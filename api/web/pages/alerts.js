// Alerts: firing and resolved alerts, live over the API's server-sent event stream, each linked
// to its correlation and to the correlation's analysis.
import { AuthRequired, get, stream } from "/ui/api.js";
import { correlationHref, empty, fmtAgo, fmtTime, h } from "/ui/dom.js";

function alertRow(alert, live) {
  // The example request is an annotation: as a label it would change the alert's identity.
  const cid = alert.annotations.correlation_id;
  const firing = alert.status === "firing";
  return h("li", { class: `alert ${firing ? "firing" : "resolved"}`, dataset: { fingerprint: alert.fingerprint, status: alert.status, via: live ? "stream" : "list" } },
    h("div", { class: "alert-head" },
      h("span", { class: `badge ${firing ? "bad" : "good"}` }, alert.status),
      h("span", { class: `badge sev-${alert.labels.severity || "warning"}` }, alert.labels.severity || "warning"),
      h("strong", {}, alert.labels.service || alert.labels.alertname),
      alert.labels.operation && alert.labels.operation !== "*" ? h("span", { class: "muted" }, ` · ${alert.labels.operation}`) : null,
      h("span", { class: "muted right", title: fmtTime(alert.updatedAt) }, `${firing ? "since" : "resolved"} ${fmtAgo(firing ? alert.startsAt : alert.updatedAt)}`)),
    h("div", { class: "alert-summary" }, alert.annotations.summary || alert.labels.alertname),
    alert.annotations.description ? h("div", { class: "muted small" }, alert.annotations.description) : null,
    cid ? h("div", { class: "alert-links" },
      h("a", { href: correlationHref(cid), "data-link": true }, "Open correlation"),
      h("a", { href: correlationHref(cid, "insights"), "data-link": true }, "Root-cause analysis"),
      h("span", { class: "mono muted small" }, cid)) : null);
}

export async function alertsPage({ main, onLeave }) {
  // The stream starts a little before the list was read (clocks differ), so no alert stored in
  // between is missed; one seen twice only replaces itself.
  const since = new Date(Date.now() - SINCE_MARGIN_MS).toISOString();
  const listing = await get("/api/v1/alerts", { limit: 200 });
  const alerts = new Map();
  const streamed = new Set(); // fingerprints whose latest message came over the stream
  // Oldest first, so the latest message of each alert is the one kept.
  for (const alert of [...listing.alerts].reverse()) alerts.set(alert.fingerprint, alert);
  const list = h("ul", { class: "alerts", id: "alert-list" });
  const status = h("span", { class: "live", id: "live" }, "connecting…");
  const counts = h("span", { class: "muted" });
  const draw = () => {
    const items = [...alerts.values()].sort((a, b) => (a.status === b.status ? (b.updatedAt > a.updatedAt ? 1 : -1)
      : a.status === "firing" ? -1 : 1));
    const firing = items.filter((a) => a.status === "firing").length;
    counts.textContent = `${firing} firing · ${items.length - firing} resolved`;
    list.replaceChildren(...(items.length ? items.map((a) => alertRow(a, streamed.has(a.fingerprint)))
      : [empty("No alerts yet. New ones appear here as they fire.")]));
  };
  main.replaceChildren(
    h("section", { class: "page-head" }, h("div", {}, h("div", { class: "eyebrow" }, "Alerts"), h("h1", {}, "Alerts")),
      h("div", { class: "head-meta" }, counts, status)),
    h("section", { class: "panel" }, list));
  draw();
  const controller = new AbortController();
  onLeave(() => controller.abort());
  follow(since, alerts, streamed, draw, status, controller.signal).catch((error) => {
    status.textContent = `stream failed: ${error.message}`;
  });
}

const RETRY_MS = 3000;
const SINCE_MARGIN_MS = 5000;

// Follow the stream; when it ends or fails (the API restarted), reconnect from the last event
// seen, as EventSource would.
async function follow(since, alerts, streamed, draw, status, signal) {
  let lastId = null;
  while (!signal.aborted) {
    try {
      await stream("/api/v1/alerts/stream", lastId ? {} : { since }, (event) => {
        if (event.id) lastId = event.id;
        if (event.event !== "alert") return;
        const alert = JSON.parse(event.data);
        streamed.add(alert.fingerprint);
        alerts.set(alert.fingerprint, alert);
        draw();
      }, signal, () => {
        status.textContent = "● live";
        status.classList.add("on");
      }, lastId);
    } catch (error) {
      if (error instanceof AuthRequired) throw error;
    }
    if (signal.aborted) return;
    status.textContent = "reconnecting…";
    status.classList.remove("on");
    await new Promise((resolve) => { setTimeout(resolve, RETRY_MS); });
  }
}
