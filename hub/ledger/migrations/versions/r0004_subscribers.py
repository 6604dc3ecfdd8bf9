"""The province's certificate subscribers (issue 21): the office's registry and the signatures
the hub saw.

- ``subscribers``: persons and organizations, their position and organization;
- ``subscriber_certificates``: certificates and requests, with the token status;
- ``subscriber_history``: every change to the two above, with its source;
- ``subscriber_observations``: the certificates of the signatures on accepted envelopes (the
  envelope seal and the main PDF's person and organization), read from the stored validation
  reports — derived and recomputable, like ``ledger_deliveries``;
- ``subscriber_scan``: how far the ledger was read for them.

None of them is part of the hash chain.

Revision ID: r0004
Revises: r0003
Create Date: 2026-12-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from hub.ledger.models import UtcDateTime

revision = "r0004"
down_revision = "r0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subscribers",
        sa.Column("identifier", sa.Text(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("position", sa.String(16), nullable=True),
        sa.Column("organ_id", sa.Text(), nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("identifier", name="pk_subscribers"),
    )
    op.create_index("ix_subscribers_organ_id", "subscribers", ["organ_id"])
    op.create_table(
        "subscriber_certificates",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("identifier", sa.Text(), nullable=False),
        sa.Column("serial", sa.Text(), nullable=True),
        sa.Column("issuer", sa.Text(), nullable=False),
        sa.Column("issuer_key", sa.Text(), nullable=False),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_to", sa.Date(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("status_date", sa.Date(), nullable=True),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_subscriber_certificates"),
        sa.UniqueConstraint("issuer_key", "serial",
                            name="uq_subscriber_certificates_issuer_serial"),
    )
    op.create_index("ix_subscriber_certificates_identifier", "subscriber_certificates",
                    ["identifier"])
    op.create_table(
        "subscriber_history",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("identifier", sa.Text(), nullable=False),
        sa.Column("certificate_id", sa.String(32), nullable=True),
        sa.Column("field", sa.String(32), nullable=False),
        sa.Column("old", sa.Text(), nullable=True),
        sa.Column("new", sa.Text(), nullable=True),
        sa.Column("effective", sa.Date(), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_subscriber_history"),
    )
    op.create_index("ix_subscriber_history_identifier", "subscriber_history", ["identifier"])
    op.create_table(
        "subscriber_observations",
        sa.Column("digest", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("received_at", UtcDateTime(), nullable=False),
        sa.Column("month", sa.String(7), nullable=False),
        sa.Column("sender", sa.Text(), nullable=False),
        sa.Column("serial", sa.Text(), nullable=False),
        sa.Column("issuer_key", sa.Text(), nullable=False),
        sa.Column("issuer", sa.Text(), nullable=False),
        sa.Column("uid", sa.Text(), nullable=True),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("digest", "role", name="pk_subscriber_observations"),
    )
    op.create_index("ix_subscriber_observations_certificate", "subscriber_observations",
                    ["issuer_key", "serial", "role", "sender", "month", "received_at"])
    op.create_table(
        "subscriber_scan",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_subscriber_scan"),
    )
    op.execute("INSERT INTO subscriber_scan (id, seq) VALUES (1, 0)")


def downgrade() -> None:
    for table in ("subscriber_scan", "subscriber_observations", "subscriber_history",
                  "subscriber_certificates", "subscribers"):
        op.drop_table(table)
