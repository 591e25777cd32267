"""The async driver: session table, routing, timers, effects."""
