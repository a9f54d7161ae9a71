"""Operator commands over a deployment: what the callback recorded, VOD's event settings."""
