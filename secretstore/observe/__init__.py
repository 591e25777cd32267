"""Seeing what a node does: Prometheus metrics, /health, the /status page, peer logs.

Fed by the cluster driver's events through the ClusterObserver port (cluster/observer.py)
and by the HTTP API's request hook; nothing here is imported by the sessions.
"""
