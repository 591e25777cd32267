"""Key-share storage: LevelDB and in-memory, one contract."""
