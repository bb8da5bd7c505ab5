"""Work the server does in the background: ingest jobs (runner) and deleting conversations past their retention
period (retention)."""
