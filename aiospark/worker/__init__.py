"""The worker: executes tasks off its event loop and keeps cached splits."""
