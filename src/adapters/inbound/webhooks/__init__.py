"""Webhooks: the Entity Permissions Core's events, signed directly (HMAC) or through SNS."""
