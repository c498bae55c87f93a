# Image for compose.yaml: the ollystack package and its pinned dependencies.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY core core
COPY pipeline pipeline
COPY agents agents
COPY schemas schemas
COPY sinks sinks
COPY api api
COPY ops ops
RUN pip install --no-cache-dir -c constraints.txt .
EXPOSE 4317 4318 8080
