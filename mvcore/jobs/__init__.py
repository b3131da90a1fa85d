"""Jobs: long generation work as taskiq tasks, in-process by default or on Redis workers.

``service`` runs and tracks jobs, ``records`` defines a job's record and the in-memory store,
``redis_store`` keeps records in Redis for many API processes and workers, and ``worker`` is the
``mvcore worker`` process.
"""
