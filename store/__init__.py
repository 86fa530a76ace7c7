"""Persistence: the schema, its migrations, sessions and every query."""

# The models come first: the modules of later tables (campaigns, search, tags...) and
# the erasure registry they register with all import them, and they import those at
# their end, so whichever module a caller names first, the order is the same.
from . import models as _models  # noqa: E402, F401
