"""The HTTP layer: parse, one application call, a response schema."""
