"""Admin sessions: the node set change and the per-key share redistribution inside it."""
