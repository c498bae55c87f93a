// Service graphs drawn by Cytoscape.js: the services of one request (Correlation Explorer) and
// the service map. Nodes and edges carry their numbers as labels; errors make them red.
import cytoscape from "/ui/vendor/cytoscape.esm.min.js";

const STYLE = [
  { selector: "node", style: {
    shape: "round-rectangle", width: 158, height: 48, "background-color": "#ffffff",
    "border-width": 2, "border-color": "data(color)", label: "data(label)", "text-wrap": "wrap",
    "text-max-width": 152, "text-valign": "center", "text-halign": "center", "font-size": 12,
    "font-family": "Inter, system-ui, sans-serif", color: "#1f2937", "line-height": 1.35,
  } },
  { selector: "node[kind != 'service']", style: { shape: "barrel", "background-color": "#f3f4f6" } },
  { selector: "node[?error]", style: { "border-color": "#dc2626", "border-width": 3, "background-color": "#fef2f2" } },
  { selector: "node:selected", style: { "overlay-opacity": 0.08 } },
  { selector: "edge", style: {
    width: "mapData(calls, 1, 200, 1.5, 6)", "line-color": "#9ca3af", "target-arrow-color": "#9ca3af",
    "target-arrow-shape": "triangle", "curve-style": "bezier", label: "data(label)", "font-size": 11,
    "text-background-color": "#ffffff", "text-background-opacity": 0.9, "text-background-padding": 2,
    color: "#374151", "text-rotation": "autorotate",
  } },
  { selector: "edge[errors > 0]", style: { "line-color": "#dc2626", "target-arrow-color": "#dc2626", color: "#b91c1c" } },
];

// nodes: [{id, label, color, kind, error}], edges: [{source, target, label, calls, errors}]
export function serviceGraph(container, nodes, edges, { onTap } = {}) {
  const cy = cytoscape({
    container,
    elements: [
      ...nodes.map((n) => ({ data: { kind: "service", ...n } })),
      ...edges.map((e) => ({ data: { id: `${e.source}->${e.target}`, ...e } })),
    ],
    style: STYLE,
    layout: { name: "breadthfirst", directed: true, spacingFactor: 1.05, padding: 12, avoidOverlap: true },
    minZoom: 0.3,
    maxZoom: 1.3,
    autoungrabify: false,
  });
  if (onTap) cy.on("tap", "node", (event) => onTap(event.target.data()));
  // The drawn services, for people reading the page source and for the browser tests.
  container.dataset.nodes = JSON.stringify(cy.nodes().map((n) => n.id()).sort());
  const fit = () => { cy.resize(); cy.fit(undefined, 12); };
  const observer = new ResizeObserver(fit);
  observer.observe(container);
  return { cy, destroy: () => { observer.disconnect(); cy.destroy(); } };
}
