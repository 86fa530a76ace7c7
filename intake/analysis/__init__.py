"""Pure analysis of response texts: passages, question tags, respondent types, campaigns and
revised versions."""
