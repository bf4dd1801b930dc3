"""Subscribers: who they are and whether they may be mailed, their preferences, links and votes."""
