"""Named pipeline stages: each one function ``run(app, session, submission_id)``."""
