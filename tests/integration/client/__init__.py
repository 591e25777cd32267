"""Integration tests of secretstore.client: real aiohttp servers on loopback, real files."""
