"""create items"""
from alembic import op

revision = "a1c0ffee0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade():
    op.execute("CREATE TABLE alembic_items (id int PRIMARY KEY)")


def downgrade():
    op.execute("DROP TABLE alembic_items")
