"""The node mesh: handshake, encrypted framing, connections to known nodes."""
