"""What responses say: passages, question tags and respondent types (pure modules)."""
