"""add name"""
from alembic import op

revision = "b2c0ffee0002"
down_revision = "a1c0ffee0001"
branch_labels = None
depends_on = None


def upgrade():
    op.execute("ALTER TABLE alembic_items ADD COLUMN name text")


def downgrade():
    op.execute("ALTER TABLE alembic_items DROP COLUMN name")
