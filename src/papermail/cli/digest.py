"""``papermail digest``: planning, sending, previewing and inspecting digests."""

import click


@click.group()
def digest() -> None:
    """Digest commands: plan, send, status and preview."""
