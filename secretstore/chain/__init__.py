"""Ethereum contracts: ACL, node sets, service contracts, registry."""
