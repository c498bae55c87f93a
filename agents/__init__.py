"""Stream agents and the pure logic they call."""
