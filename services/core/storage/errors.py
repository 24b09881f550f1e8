"""Storage errors; SQLAlchemy's own are translated to these at the boundary."""


class StorageError(Exception):
    """Base class of storage errors."""


class MigrationRequiredError(StorageError):
    """The database schema is older than the code."""


class NotFoundError(StorageError):
    """The row asked for does not exist."""


class ConflictError(StorageError):
    """A unique value (a brand name, say) is taken already."""
