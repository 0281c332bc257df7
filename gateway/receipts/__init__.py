"""Receipts: canonical JSON, RFC 6962 Merkle trees, GnuPG signing and verification."""
