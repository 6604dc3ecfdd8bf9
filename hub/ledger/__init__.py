"""The tamper-evident delivery ledger."""
