"""Fixtures for bounces: the delivery tests' SMTP stand-in and committed databases."""

from tests.delivery.conftest import (  # noqa: F401  (fixtures)
    _fresh_circuit_breakers,
    committed_databases,
    send_env_factory,
    smtp_server,
)
