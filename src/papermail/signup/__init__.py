"""Signing up: the recorded request, its limits, the double opt-in flow and the confirmation email it owes."""
