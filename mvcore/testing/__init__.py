"""Fixtures and fakes users of mvcore can import in their own tests."""
