"""Pure session state machines: each takes messages and returns effects."""
