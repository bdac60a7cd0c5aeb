"""Shuffles: map tasks write bucketed files, the shuffle service serves them to reducers."""
