"""Pollers: inbound adapters driven by a timer instead of a request."""
