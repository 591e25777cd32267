"""Configuration: the Parity [secretstore] TOML section as frozen dataclasses."""
