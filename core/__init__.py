"""The foundation every stage stands on: settings, the lake, logs, errors, the database connection,
threads, dates, the IGDB entity catalogue and the raw lake's layout. It imports no stage."""
