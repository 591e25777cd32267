"""A node's verifiable encrypted backup: the file format and its checks (archive.py)."""
