"""Jobs: long generation work as taskiq tasks, in-process by default or on Redis workers.

``service`` runs and tracks jobs, ``records`` holds their state (in memory or SQLite-free plain
records), ``redis_store`` keeps that state in Redis for many API processes and workers, and
``worker`` is the ``mvcore worker`` process.
"""
