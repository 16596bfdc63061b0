"""The database: typed models, engine helpers and Alembic migrations (no create_all at runtime)."""
