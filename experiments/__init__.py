"""Experiments: A/B arms with deterministic assignment, per-arm online metrics, and the exploration bandit's state."""
