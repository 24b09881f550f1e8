"""Brands: the query language that defines a brand, and the matcher that finds brands in text.

``parse_query`` turns a query such as ``("northwind" OR @northwindcrm) AND NOT "northwind
traders"`` into an AST (see ``query`` for the language and what a term matches);
``BrandMatcher.compile`` builds one matcher for many ``BrandDefinition``s, and
``BrandMatcher.match`` returns a ``MatchResult`` per text.
"""

from services.core.brands.errors import BrandDefinitionError, BrandError, BrandQueryError
from services.core.brands.matcher import BrandDefinition, BrandMatcher, MatchResult
from services.core.brands.query import parse_query

__all__ = [
    "BrandDefinition",
    "BrandDefinitionError",
    "BrandError",
    "BrandMatcher",
    "BrandQueryError",
    "MatchResult",
    "parse_query",
]
