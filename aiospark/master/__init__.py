"""The master: cluster membership, liveness and status."""
