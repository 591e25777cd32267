"""The Parity-compatible HTTP API."""
