"""Projects: idea + character + song -> finished music video, as a resumable pipeline of jobs.

``records`` (Project, Scene), ``store`` (ProjectStore; ``sqlite_store``, ``dynamo_store``),
``steps`` (what one job does: scenes, a clip, a lipsync, compose), ``pipeline`` (the driver that
submits the steps and resumes after a restart), ``jobs_adapter`` (the only module that knows the
job service).
"""
