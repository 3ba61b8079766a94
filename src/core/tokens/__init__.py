"""Tokens, compliance, custody addresses, mint, transfer, deposits, withdrawals."""
