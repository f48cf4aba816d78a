"""console auth tokens

Revision ID: 0009
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_auth_tokens",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("console_type", sa.String(length=255), nullable=False),
        sa.Column("instance_uuid", sa.String(length=36), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=True),
        sa.Column("internal_access_path", sa.String(length=255), nullable=True),
        sa.Column("expires", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_auth_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_console_auth_tokens_token_hash")),
    )
    with op.batch_alter_table("console_auth_tokens", schema=None) as batch_op:
        batch_op.create_index("ix_console_auth_tokens_instance", ["instance_uuid"], unique=False)
        batch_op.create_index("ix_console_auth_tokens_expires", ["expires"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("console_auth_tokens", schema=None) as batch_op:
        batch_op.drop_index("ix_console_auth_tokens_expires")
        batch_op.drop_index("ix_console_auth_tokens_instance")
    op.drop_table("console_auth_tokens")
