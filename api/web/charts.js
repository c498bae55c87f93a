// Small time-series charts drawn by uPlot: one line per series on a shared time axis.
import uPlot from "/ui/vendor/uPlot.esm.js";

// times: epoch seconds; series: [{label, color, values}]; format: value -> text; window: [from, to]
// in epoch seconds, so a window with little data still reads as that window.
export function timeChart(container, { times, series, window, format = (v) => String(v), height = 150 }) {
  const width = Math.max(240, container.clientWidth || 320);
  const options = {
    width, height,
    legend: { show: series.length > 1, live: false },
    cursor: { points: { size: 6 } },
    scales: { x: { time: true, range: window ? () => window : undefined } },
    axes: [
      { stroke: "#6b7280", grid: { stroke: "#f1f5f9" }, ticks: { stroke: "#e5e7eb" }, font: "11px system-ui" },
      { stroke: "#6b7280", grid: { stroke: "#f1f5f9" }, ticks: { stroke: "#e5e7eb" }, font: "11px system-ui",
        size: 64, values: (u, values) => values.map(format) },
    ],
    series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.color, width: 1.6, value: (u, v) => (v === null ? "–" : format(v)),
      fill: series.length === 1 ? `${s.color}22` : undefined, points: { show: times.length < 30, size: 5 } }))],
  };
  const plot = new uPlot(options, [times, ...series.map((s) => s.values)], container);
  const observer = new ResizeObserver(() => plot.setSize({ width: Math.max(240, container.clientWidth), height }));
  observer.observe(container);
  return { destroy: () => { observer.disconnect(); plot.destroy(); } };
}
