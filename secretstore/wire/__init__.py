"""Typed cluster messages and their strict codec."""
