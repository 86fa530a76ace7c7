"""The edges to the outside: IMAP (``imap``), SMTP (``smtp``), OAuth2 sign-in (``oauth``),
Maildir and file sources (``sources``), ``check``, and the mail itself: ``mime`` reads the
bytes into ``message`` value objects, ``originals`` writes them back out, ``outbox`` sends
the acknowledgements.
"""
