"""The adoption report's rollup (issue 20): ``ledger_adoption``.

One row per organization, UTC day and refusal reason ("" for accepted envelopes) with the
report's counters (accepted, refused, signed_valid, pdf_both), kept up to date by every ledger
write in its own transaction (:mod:`hub.ledger.adoption`). Derived from ``ledger_documents`` and
recomputable, like ``ledger_deliveries``; not part of the hash chain.

The upgrade fills it from the documents already stored: every envelope's stored validation
report is parsed once, here (6–10 s for a 1,000,000-row ledger on SQLite; see
docs/PERFORMANCE.md), so the report never parses them again.

Revision ID: r0005
Revises: r0004
Create Date: 2026-12-09
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from hub.ledger import adoption

revision = "r0005"
down_revision = "r0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ledger_adoption",
        sa.Column("organ_id", sa.Text(), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("accepted", sa.BigInteger(), nullable=False),
        sa.Column("refused", sa.BigInteger(), nullable=False),
        sa.Column("signed_valid", sa.BigInteger(), nullable=False),
        sa.Column("pdf_both", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("organ_id", "day", "reason", name="pk_ledger_adoption"),
    )
    adoption.rebuild(op.get_bind())


def downgrade() -> None:
    op.drop_table("ledger_adoption")
