"""The write-ahead outbox: receipts as published, before the ledger commit (issue 17, item 6).

``ledger_outbox`` holds the exact bytes of every signed receipt of a batch (their content
carries a time, so signing again after a crash would give other bytes under the same message
id). The intake writes them in a transaction of its own *before* the batch's first publish;
the batch's ledger commit deletes them in the same transaction as its documents and events.
Rows left by a crash are read when the deliveries come back and published again unchanged.
Not part of the hash chain: a row is a promise about to be kept, not a record.

Revision ID: r0003
Revises: r0002
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from hub.ledger.models import UtcDateTime

revision = "r0003"
down_revision = "r0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_outbox",
        sa.Column("message_id", sa.Text(), nullable=False),
        sa.Column("about", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("issuer", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("recipient", sa.Text(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("body_digest", sa.String(64), nullable=False),
        sa.Column("planned_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("message_id", name="pk_ledger_outbox"),
    )
    op.create_index("ix_ledger_outbox_about", "ledger_outbox", ["about"])


def downgrade() -> None:
    op.drop_index("ix_ledger_outbox_about", table_name="ledger_outbox")
    op.drop_table("ledger_outbox")
