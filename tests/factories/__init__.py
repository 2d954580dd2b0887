"""factory-boy factories, one per model, grouped by app."""
