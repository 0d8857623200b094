"""broken: adds a column that exists"""
from alembic import op

revision = "c3c0ffee0003"
down_revision = "b2c0ffee0002"
branch_labels = None
depends_on = None


def upgrade():
    op.execute("ALTER TABLE alembic_items ADD COLUMN name text")


def downgrade():
    pass
