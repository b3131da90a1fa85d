"""Test helpers (fakes and fixtures) that users of mvcore can import in their own tests."""
