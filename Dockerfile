# Image for compose.yaml: the ollystack package and its pinned dependencies, with the web UI.
# The UI's chart and graph libraries come from ui/package-lock.json, as `make ui` copies them.
FROM node:20-slim AS ui
WORKDIR /ui
COPY ui/package.json ui/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error \
 && mkdir -p vendor \
 && cp node_modules/uplot/dist/uPlot.esm.js node_modules/uplot/dist/uPlot.min.css vendor/ \
 && cp node_modules/cytoscape/dist/cytoscape.esm.min.mjs vendor/cytoscape.esm.min.js

FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY core core
COPY pipeline pipeline
COPY agents agents
COPY schemas schemas
COPY sinks sinks
COPY api api
COPY --from=ui /ui/vendor api/web/vendor
COPY ops ops
RUN pip install --no-cache-dir -c constraints.txt .
EXPOSE 4317 4318 8080
