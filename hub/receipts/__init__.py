"""Receipts: what the hub signs about a packet (content) and who signs it (issuer)."""

from hub.receipts.issuer import HubReceipts

__all__ = ["HubReceipts"]
