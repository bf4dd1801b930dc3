"""What several test folders share: fixture modules registered in tests/conftest.py, and helpers."""
