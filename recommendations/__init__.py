"""Candidate generation: the models, their registry and services (the Django parts build on `ml/`)."""
