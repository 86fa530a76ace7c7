"""Pipeline stages: each a function ``run(app, session, submission_id)`` for one submission."""
