"""Root-cause analysis computed from the stored rows: request analysis and, beside it, incident analysis."""
