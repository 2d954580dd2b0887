"""Ranking, diversification and business rules: pure numpy/LightGBM; no Django imports here."""
