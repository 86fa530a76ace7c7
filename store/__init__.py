"""Persistence: the schema, its migrations, sessions and every query.

Every table module is imported here, so the metadata is complete as soon
as any part of ``store`` is imported; no table module imports another at its end.
"""

from . import campaigns as _campaigns  # noqa: F401 - campaign and version tables
from . import erasure as _erasure  # noqa: F401 - registers the erasers of these tables
from . import models as _models  # noqa: F401 - the core tables
from . import parts as _parts  # noqa: F401 - registers the skipped_parts table
from . import responses as _responses  # noqa: F401 - response texts, bands, versions
from . import search as _search  # noqa: F401 - registers the search index's eraser
from . import tags as _tags  # noqa: F401 - the tagging tables and their eraser
from . import users as _users  # noqa: F401 - staff accounts' tables (web view)
from . import work as _work  # noqa: F401 - stage records, seen by Alembic
