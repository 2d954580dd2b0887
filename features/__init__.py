"""Feature store: online features in Redis (or local memory), offline Parquet snapshots, batch refresh."""
