"""What a user runs: HTTP client, local helpers, JSON-RPC."""
