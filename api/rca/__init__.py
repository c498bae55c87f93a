"""Root-cause analysis."""
