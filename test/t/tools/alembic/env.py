# Alembic environment: run the revisions over a connection made from the
# libpq environment (PGHOST, PGPORT, PGDATABASE), one transaction per run.
from alembic import context
from sqlalchemy import create_engine

engine = create_engine("postgresql+psycopg2://")
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()
