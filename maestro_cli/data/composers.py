"""Canonical MAESTRO composers: accent-insensitive matching and the composer tokens' names.

Multi-composer entries ("Johann Sebastian Bach / Ferruccio Busoni") name the composer of the music first
and the arranger second; the piece is filed under the first name. Composers with at least five pieces in
MAESTRO v3 (counted that way) get their own token; everyone else shares ``unknown``. The tuple below is
part of the versioned vocabulary: never reorder it, only append (and bump the tokenizer version).
"""

from __future__ import annotations

import unicodedata

from maestro_cli.errors import UsageError

COMPOSERS: tuple[str, ...] = (
    "Frédéric Chopin",
    "Franz Schubert",
    "Johann Sebastian Bach",
    "Ludwig van Beethoven",
    "Franz Liszt",
    "Sergei Rachmaninoff",
    "Robert Schumann",
    "Claude Debussy",
    "Joseph Haydn",
    "Wolfgang Amadeus Mozart",
    "Alexander Scriabin",
    "Felix Mendelssohn",
    "Domenico Scarlatti",
    "Johannes Brahms",
    "Pyotr Ilyich Tchaikovsky",
    "Isaac Albéniz",
    "Modest Mussorgsky",
    "Muzio Clementi",
    "César Franck",
    "George Frideric Handel",
    "Nikolai Medtner",
)
UNKNOWN = "unknown"


def fold(text: str) -> str:
    """Lower-case, accents removed: ``fold("Frédéric") == "frederic"``."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch)).casefold().strip()


def primary_composer(canonical: str) -> str:
    """The composer of the music in a MAESTRO ``canonical_composer`` entry (the first of "A / B")."""
    return canonical.split("/")[0].strip()


def composer_class(canonical: str | None) -> str:
    """The composer token's name for a metadata entry: one of :data:`COMPOSERS` or ``unknown``."""
    if not canonical:
        return UNKNOWN
    primary = fold(primary_composer(canonical))
    return next((name for name in COMPOSERS if fold(name) == primary), UNKNOWN)


def matches(query: str, canonical: str) -> bool:
    """Case- and accent-insensitive substring match (``chopin`` matches ``Frédéric Chopin``)."""
    return fold(query) in fold(canonical)


def resolve_composer(query: str, known: tuple[str, ...] | list[str] = COMPOSERS) -> str:
    """The one known composer ``query`` names; a usage error listing the known ones otherwise."""
    if fold(query) == UNKNOWN:
        return UNKNOWN
    exact = [name for name in known if fold(name) == fold(query)]
    found = exact or [name for name in known if matches(query, name)]
    if len(found) == 1:
        return found[0]
    listing = ", ".join(known)
    if not found:
        raise UsageError(f"unknown composer '{query}'; known composers: {listing}")
    raise UsageError(f"composer '{query}' is ambiguous: {', '.join(found)}")
