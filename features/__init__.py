"""Feature store: online features in Redis (or a database table), offline Parquet snapshots, batch refresh."""
