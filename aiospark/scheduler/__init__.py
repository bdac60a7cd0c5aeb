"""The DAG scheduler: stages, a pure state machine, and its async shell."""
