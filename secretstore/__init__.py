"""secretstore: a threshold key-server node, compatible with Parity Secret Store clients."""

__version__ = "0.1.0"
