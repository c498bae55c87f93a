"""SQL of the query API: every value a bound parameter, identifiers only from code."""
