"""The load stage: a validated date's marts upserted into PostgreSQL."""
