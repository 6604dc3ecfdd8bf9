"""Columns that cannot truncate; refused packets as documents; revocation evidence.

- Every text a packet or a broker property supplies becomes ``Text`` (issue 16, H1: a
  ``DocumentId`` over 128 characters made PostgreSQL refuse the insert and crash-looped every
  consumer). Values the hub makes itself (hex digests, kinds, states) keep their lengths.
- ``ledger_documents`` is keyed by ``(digest, kind)`` and gains ``refusal`` (kind ``refused``:
  every packet the hub refuses is a ledger document, issue 17) and ``revocation`` (references to
  the CRLs / OCSP answers the validation used).
- ``ledger_evidence_blobs`` stores those CRLs, OCSP answers and certificates by digest.

On SQLite the altered tables are copied (Alembic batch mode); on PostgreSQL ``varchar`` to
``text`` is a catalogue change (no table rewrite).

Revision ID: r0002
Revises: r0001
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from hub.ledger.models import UtcDateTime

revision = "r0002"
down_revision = "r0001"
branch_labels = None
depends_on = None

_TEXT_COLUMNS = {
    "ledger_documents": (("sender", 64), ("document_id", 128), ("code", 128)),
    "ledger_events": (("message_id", 255), ("organ_id", 64), ("reason", 64), ("actor", 64)),
    "ledger_deliveries": (("organ_id", 64),),
}


def upgrade() -> None:
    for table, columns in _TEXT_COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for name, length in columns:
                batch.alter_column(name, type_=sa.Text(), existing_type=sa.String(length))
    with op.batch_alter_table("ledger_documents") as batch:
        batch.add_column(sa.Column("refusal", sa.Text(), nullable=True))
        batch.add_column(sa.Column("revocation", sa.Text(), nullable=True))
        batch.drop_constraint("pk_ledger_documents", type_="primary")
        batch.create_primary_key("pk_ledger_documents", ["digest", "kind"])
    op.create_table(
        "ledger_evidence_blobs",
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("first_seen", UtcDateTime(), nullable=False),
        sa.Column("kept", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("digest", name="pk_ledger_evidence_blobs"),
    )


def downgrade() -> None:
    op.drop_table("ledger_evidence_blobs")
    with op.batch_alter_table("ledger_documents") as batch:
        batch.drop_constraint("pk_ledger_documents", type_="primary")
        batch.create_primary_key("pk_ledger_documents", ["digest"])
        batch.drop_column("revocation")
        batch.drop_column("refusal")
    for table, columns in _TEXT_COLUMNS.items():
        with op.batch_alter_table(table) as batch:
            for name, length in columns:
                batch.alter_column(name, type_=sa.String(length), existing_type=sa.Text())
