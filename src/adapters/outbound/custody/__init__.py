"""Custody adapters: HD key derivation (bip-utils) and EIP-191 signatures (eth-account)."""
