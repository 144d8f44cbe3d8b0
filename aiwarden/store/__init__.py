"""Storage: SQLAlchemy tables, migrations, and the small repositories over them."""

from aiwarden.store.database import Database, default_url

__all__ = ["Database", "default_url"]
