"""What operators watch: Prometheus metrics at /metrics, JSON log lines carrying the request id (docs/metrics.md)."""
