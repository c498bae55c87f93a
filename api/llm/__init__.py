"""The language model: a litellm client, explanations of computed findings, and their checks."""
