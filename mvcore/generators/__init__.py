"""Generators: fill the flavor's templates, call a provider, store, answer.

They take a ``ConfigBundle`` -- the resolved values a request was given,
plain data that can travel inside a job -- so a reload while a job runs
changes nothing in that job.
"""
