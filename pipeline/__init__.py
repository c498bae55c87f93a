"""OllyStack pipeline: settings, topics, errors, the Faust app, the OTLP gateway, the CLI."""
