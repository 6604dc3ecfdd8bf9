"""The first ledger tables: head, documents, events, deliveries, checkpoints.

Revision ID: r0001
Revises:
Create Date: 2024-06-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from hub.ledger.models import UtcDateTime

revision = "r0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_head",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("chain_hash", sa.String(64), nullable=False),
        sa.Column("checkpoint_seq", sa.BigInteger(), nullable=False),
        sa.Column("checkpoint_at", UtcDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_ledger_head"),
    )
    op.execute(
        "INSERT INTO ledger_head (id, seq, chain_hash, checkpoint_seq) "
        "VALUES (1, 0, '" + "0" * 64 + "', 0)"
    )
    op.create_table(
        "ledger_documents",
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("entry_hash", sa.String(64), nullable=False),
        sa.Column("chain_hash", sa.String(64), nullable=False),
        sa.Column("sender", sa.String(64), nullable=False),
        sa.Column("document_id", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("code", sa.String(128), nullable=False),
        sa.Column("subject_digest", sa.String(64), nullable=False),
        sa.Column("recipients", sa.Text(), nullable=False),
        sa.Column("received_at", UtcDateTime(), nullable=False),
        sa.Column("links_to", sa.String(64), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=True),
        sa.Column("report", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("digest", name="pk_ledger_documents"),
        sa.UniqueConstraint("seq", name="uq_ledger_documents_seq"),
    )
    op.create_index("ix_ledger_documents_sender", "ledger_documents", ["sender"])
    op.create_index("ix_ledger_documents_code", "ledger_documents", ["code"])
    op.create_index("ix_ledger_documents_received_at", "ledger_documents", ["received_at"])
    op.create_index("ix_ledger_documents_links_to", "ledger_documents", ["links_to"])
    op.create_index(
        "ix_ledger_documents_sender_document_id", "ledger_documents", ["sender", "document_id"]
    )
    op.create_table(
        "ledger_events",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("entry_hash", sa.String(64), nullable=False),
        sa.Column("chain_hash", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("message_id", sa.String(255), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("digest", sa.String(64), nullable=True),
        sa.Column("organ_id", sa.String(64), nullable=True),
        sa.Column("reason", sa.String(64), nullable=True),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_ledger_events"),
    )
    for column in ("kind", "at", "digest", "organ_id", "reason"):
        op.create_index(f"ix_ledger_events_{column}", "ledger_events", [column])
    op.create_table(
        "ledger_deliveries",
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("organ_id", sa.String(64), nullable=False),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("updated_seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("digest", "organ_id", name="pk_ledger_deliveries"),
    )
    op.create_index("ix_ledger_deliveries_organ_id", "ledger_deliveries", ["organ_id"])
    op.create_index("ix_ledger_deliveries_state", "ledger_deliveries", ["state"])
    op.create_table(
        "ledger_checkpoints",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("head", sa.String(64), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("signature", sa.LargeBinary(), nullable=True),
        sa.Column("cert_pem", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_ledger_checkpoints"),
    )


def downgrade() -> None:
    for table in ("ledger_checkpoints", "ledger_deliveries", "ledger_events",
                  "ledger_documents", "ledger_head"):
        op.drop_table(table)
