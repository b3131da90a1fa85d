"""The Litestar application: mv API, audio API, flavor API, web UI."""
