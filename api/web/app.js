// The shell: routing in the browser (one HTML page for every path), the search box, sign-in.
import { ApiError, AuthRequired, apiKey, authRequired, clearApiKey, get, setApiKey } from "/ui/api.js";
import { correlationHref, h } from "/ui/dom.js";
import { alertsPage } from "/ui/pages/alerts.js";
import { correlationsPage } from "/ui/pages/correlations.js";
import { dashboardPage } from "/ui/pages/dashboard.js";
import { explorerPage } from "/ui/pages/explorer.js";
import { servicesPage } from "/ui/pages/services.js";

const ROUTES = [
  [/^\/(?:dashboard)?$/, "dashboard", dashboardPage],
  [/^\/correlations$/, "correlations", correlationsPage],
  [/^\/correlate\/(.+)$/, "correlations", explorerPage],
  [/^\/services$/, "services", servicesPage],
  [/^\/alerts$/, "alerts", alertsPage],
];
const TRACE_ID = /^[0-9a-f]{32}$/i;

let leave = null; // the current page's cleanup (closes streams, destroys charts)

export function navigate(href) {
  history.pushState(null, "", href);
  render();
}

function signIn(main, reason) {
  const input = h("input", { type: "password", name: "key", required: true, autocomplete: "current-password",
    placeholder: "API key", "aria-label": "API key" });
  main.replaceChildren(h("section", { class: "signin", id: "signin" },
    h("h1", {}, "Sign in"),
    h("p", {}, "This OllyStack API has API keys turned on. Enter a key to see its tenant's data; "
      + "it is kept in this browser tab only."),
    reason ? h("p", { class: "signin-error" }, reason) : null,
    h("form", {
      onsubmit: (event) => {
        event.preventDefault();
        setApiKey(input.value.trim());
        render();
      },
    }, input, h("button", { type: "submit" }, "Sign in"))));
  input.focus();
}

function failure(main, error) {
  const title = error instanceof ApiError && error.status === 404 ? "Not found" : "Something went wrong";
  main.replaceChildren(h("section", { class: "failure" }, h("h1", {}, title), h("p", {}, error.message)));
}

async function render() {
  leave?.();
  leave = null;
  const main = document.getElementById("main");
  const path = location.pathname;
  const [match, section, page] = ROUTES.map(([re, name, fn]) => [re.exec(path), name, fn]).find(([m]) => m)
    || [null, null, null];
  for (const link of document.querySelectorAll("[data-nav]")) {
    link.classList.toggle("active", link.dataset.nav === section);
  }
  document.getElementById("signout").hidden = !(authRequired() && apiKey());
  if (authRequired() && !apiKey()) {
    signIn(main);
    return;
  }
  if (!match) {
    failure(main, new ApiError(404, `No page at ${path}.`));
    return;
  }
  main.replaceChildren(h("p", { class: "muted loading" }, "Loading…"));
  const context = { main, params: new URLSearchParams(location.search), navigate, onLeave: (fn) => { leave = fn; } };
  try {
    await page(context, ...match.slice(1));
  } catch (error) {
    if (error instanceof AuthRequired) signIn(main, apiKey() ? null : "That key was not accepted.");
    else failure(main, error);
  }
}

async function search(text) {
  const value = text.trim();
  if (!value) return;
  if (TRACE_ID.test(value)) {
    // A trace ID: open the correlation its spans were stored under.
    try {
      const trace = await get(`/api/v1/traces/${value.toLowerCase()}`);
      if (trace.correlation_id) {
        navigate(correlationHref(trace.correlation_id));
        return;
      }
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 404)) throw error;
    }
  }
  navigate(correlationHref(value));
}

document.addEventListener("click", (event) => {
  const link = event.target.closest("a[data-link]");
  if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
  event.preventDefault();
  navigate(link.getAttribute("href"));
});
document.getElementById("search").addEventListener("submit", (event) => {
  event.preventDefault();
  search(document.getElementById("search-input").value).catch((error) => failure(document.getElementById("main"), error));
});
document.getElementById("signout").addEventListener("click", () => {
  clearApiKey();
  render();
});
window.addEventListener("popstate", render);
render();
