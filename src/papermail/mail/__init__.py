"""Outgoing mail: message building and the backends that deliver it."""
