"""An IGDB-compatible server for laptops, CI and tests: generated or given data, limits, faults."""
