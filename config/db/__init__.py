"""PostgreSQL with client-side deadlines and a circuit breaker: ENGINE "config.db" (see base.py)."""
