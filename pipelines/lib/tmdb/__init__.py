"""TMDB: the HTTP client (:mod:`.client`), its typed errors (:mod:`.errors`), the pure
converters from TMDB JSON to lake rows (:mod:`.convert`) and the protocol every TMDB source
(live or recorded) provides (:mod:`.source`). The names the rest of the project uses
are re-exported here (``from pipelines.lib import tmdb; tmdb.TMDBClient``)."""

from pipelines.lib.tmdb.client import (
    DEFAULT_APPEND,
    DEFAULT_BASE_URL,
    DEFAULT_EXPORTS_URL,
    EXPORT_PREFIX,
    MAX_DISCOVER_PAGES,
    TMDBClient,
)
from pipelines.lib.tmdb.convert import (
    CAST_LIMIT,
    MONETIZATION,
    PROVIDER_TECHNICAL_NAMES,
    aliases_of,
    availability_frame,
    details_to_title,
    provider_technical_name,
    providers_to_availability,
    title_id,
    titles_frame,
)
from pipelines.lib.tmdb.errors import (
    TMDBAuthError,
    TMDBConfigError,
    TMDBError,
    TMDBInvalidPage,
    TMDBNotFound,
    TMDBPayloadError,
    TMDBRateLimited,
    TMDBTransportError,
    error_from_response,
)
from pipelines.lib.tmdb.kinds import KINDS, Kind, check_kind
from pipelines.lib.tmdb.source import TMDBSource

__all__ = [
    "CAST_LIMIT",
    "DEFAULT_APPEND",
    "DEFAULT_BASE_URL",
    "DEFAULT_EXPORTS_URL",
    "EXPORT_PREFIX",
    "KINDS",
    "MAX_DISCOVER_PAGES",
    "MONETIZATION",
    "PROVIDER_TECHNICAL_NAMES",
    "Kind",
    "TMDBAuthError",
    "TMDBClient",
    "TMDBConfigError",
    "TMDBError",
    "TMDBInvalidPage",
    "TMDBNotFound",
    "TMDBPayloadError",
    "TMDBRateLimited",
    "TMDBSource",
    "TMDBTransportError",
    "aliases_of",
    "availability_frame",
    "check_kind",
    "details_to_title",
    "error_from_response",
    "provider_technical_name",
    "providers_to_availability",
    "title_id",
    "titles_frame",
]
