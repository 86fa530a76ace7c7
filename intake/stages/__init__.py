"""Pipeline stages: each ``run(app, session, submission_id)`` does its work for one submission."""
