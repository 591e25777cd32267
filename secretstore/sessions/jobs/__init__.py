"""Pieces client sessions reuse: delegation to a holder of the chosen key version."""
