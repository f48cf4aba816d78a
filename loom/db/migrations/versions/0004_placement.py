"""placement: resource providers, inventories, allocations, traits, aggregates

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "placement_consumers",
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("project_id", sa.String(length=255), nullable=False),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("consumer_type", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("uuid", name=op.f("pk_placement_consumers")),
    )
    with op.batch_alter_table("placement_consumers", schema=None) as batch_op:
        batch_op.create_index("ix_placement_consumers_project_user", ["project_id", "user_id"], unique=False)

    op.create_table(
        "placement_providers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("uuid", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("root_provider_id", sa.Integer(), nullable=True),
        sa.Column("parent_provider_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["parent_provider_id"],
            ["placement_providers.id"],
            name=op.f("fk_placement_providers_parent_provider_id_placement_providers"),
        ),
        sa.ForeignKeyConstraint(
            ["root_provider_id"],
            ["placement_providers.id"],
            name=op.f("fk_placement_providers_root_provider_id_placement_providers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_placement_providers")),
        sa.UniqueConstraint("name", name=op.f("uq_placement_providers_name")),
        sa.UniqueConstraint("uuid", name=op.f("uq_placement_providers_uuid")),
    )
    with op.batch_alter_table("placement_providers", schema=None) as batch_op:
        batch_op.create_index("ix_placement_providers_parent", ["parent_provider_id"], unique=False)
        batch_op.create_index("ix_placement_providers_root", ["root_provider_id"], unique=False)

    op.create_table(
        "placement_resource_classes",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_placement_resource_classes")),
    )
    op.create_table(
        "placement_traits",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_placement_traits")),
    )
    op.create_table(
        "placement_aggregates",
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("aggregate_uuid", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["placement_providers.id"],
            name=op.f("fk_placement_aggregates_provider_id_placement_providers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("provider_id", "aggregate_uuid", name=op.f("pk_placement_aggregates")),
    )
    with op.batch_alter_table("placement_aggregates", schema=None) as batch_op:
        batch_op.create_index("ix_placement_aggregates_aggregate", ["aggregate_uuid"], unique=False)

    op.create_table(
        "placement_allocations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("consumer_uuid", sa.String(length=36), nullable=False),
        sa.Column("resource_class", sa.String(length=255), nullable=False),
        sa.Column("used", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["consumer_uuid"],
            ["placement_consumers.uuid"],
            name=op.f("fk_placement_allocations_consumer_uuid_placement_consumers"),
        ),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["placement_providers.id"],
            name=op.f("fk_placement_allocations_provider_id_placement_providers"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_placement_allocations")),
    )
    with op.batch_alter_table("placement_allocations", schema=None) as batch_op:
        batch_op.create_index("ix_placement_allocations_consumer", ["consumer_uuid"], unique=False)
        batch_op.create_index(
            "ix_placement_allocations_provider_class", ["provider_id", "resource_class"], unique=False
        )

    op.create_table(
        "placement_inventories",
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("resource_class", sa.String(length=255), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("reserved", sa.BigInteger(), nullable=False),
        sa.Column("min_unit", sa.BigInteger(), nullable=False),
        sa.Column("max_unit", sa.BigInteger(), nullable=False),
        sa.Column("step_size", sa.BigInteger(), nullable=False),
        sa.Column("allocation_ratio", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["placement_providers.id"],
            name=op.f("fk_placement_inventories_provider_id_placement_providers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("provider_id", "resource_class", name=op.f("pk_placement_inventories")),
    )
    op.create_table(
        "placement_provider_traits",
        sa.Column("provider_id", sa.Integer(), nullable=False),
        sa.Column("trait", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["provider_id"],
            ["placement_providers.id"],
            name=op.f("fk_placement_provider_traits_provider_id_placement_providers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("provider_id", "trait", name=op.f("pk_placement_provider_traits")),
    )
    with op.batch_alter_table("placement_provider_traits", schema=None) as batch_op:
        batch_op.create_index("ix_placement_provider_traits_trait", ["trait"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("placement_provider_traits", schema=None) as batch_op:
        batch_op.drop_index("ix_placement_provider_traits_trait")

    op.drop_table("placement_provider_traits")
    op.drop_table("placement_inventories")
    with op.batch_alter_table("placement_allocations", schema=None) as batch_op:
        batch_op.drop_index("ix_placement_allocations_provider_class")
        batch_op.drop_index("ix_placement_allocations_consumer")

    op.drop_table("placement_allocations")
    with op.batch_alter_table("placement_aggregates", schema=None) as batch_op:
        batch_op.drop_index("ix_placement_aggregates_aggregate")

    op.drop_table("placement_aggregates")
    op.drop_table("placement_traits")
    op.drop_table("placement_resource_classes")
    with op.batch_alter_table("placement_providers", schema=None) as batch_op:
        batch_op.drop_index("ix_placement_providers_root")
        batch_op.drop_index("ix_placement_providers_parent")

    op.drop_table("placement_providers")
    with op.batch_alter_table("placement_consumers", schema=None) as batch_op:
        batch_op.drop_index("ix_placement_consumers_project_user")

    op.drop_table("placement_consumers")
