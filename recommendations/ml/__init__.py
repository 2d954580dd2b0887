"""A small recommender library (numpy, scipy, pandas, torch, implicit): no Django, no I/O besides save/load."""
