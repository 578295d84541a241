"""The engine: one thread owns the one loaded model and serves every caller from one queue."""
