"""HTTP handlers, kept thin: they decode, call the gateway, and encode."""
