"""Security tests: hostile flavor files, hostile HTTP, auth and secrets, plugins, API fuzzing.

Every test bounds its time; the hostile-input ones also bound memory.  The live-server helper
and ``make_settings`` come from ``tests/reliability``.
"""
