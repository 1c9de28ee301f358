"""Dataset cards: an in-toto Statement v1 whose subject is the manifest and whose predicate
describes the dataset (sources, licenses, exclusion lists applied, the manifest commitment).

The card is built from a developer-written spec (YAML or JSON) and a manifest. Sources claim
manifest entries by path globs (.gitignore style: ``*`` stays in one path segment, ``**`` spans
any number; see :mod:`provenance.globs`) or by URL domains (the host and its subdomains). Sources
are tried in the order written and the first that claims an entry, by either, takes it; a
record's own ``source`` wins over both. An entry that no source claims is an error naming it; a
source that claims no entry is a warning (:class:`~provenance.errors.ProvenanceWarning`).

Modules:

- :mod:`.model`: the statement and predicate as frozen typed values (``from_dict``/``to_dict``);
- :mod:`.spec`: reading and checking a spec;
- :mod:`.sources`: which source claims each manifest entry, and the counts per source and license;
- :mod:`.statement`: building, checking and signing a statement;
- :mod:`.verification`: verifying a signed card against a trust store, showing it to people;
- :mod:`.files`: the I/O shell, one function per ``card`` command.
"""

from provenance.card.files import (
    build_card,
    read_card_document,
    read_signed_card,
    show_card_file,
    sign_card_file,
)
from provenance.card.model import (
    LEAF_FORMAT,
    PAYLOAD_TYPE,
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    CardPredicate,
    CardStatement,
    Collection,
    Exclusion,
    FingerprintIndexCommitment,
    Generator,
    LicenseCount,
    ManifestCommitment,
    Publisher,
    Source,
    SourceDescription,
    Subject,
)
from provenance.card.sources import (
    SourceAssigner,
    SourceLike,
    Tallier,
    Tally,
    described,
    entry_license,
    tally,
)
from provenance.card.spec import MAX_SPEC_BYTES, load_spec
from provenance.card.statement import (
    MAX_CARD_BYTES,
    SignedCard,
    build_statement,
    check_statement,
    parse_statement,
    sign_card,
    unverified_card_document,
    unverified_statement,
)
from provenance.card.verification import (
    CARD_ROLES,
    CardView,
    SignatureView,
    VerifiedCard,
    show_card,
    verify_card,
)

__all__ = [
    "CARD_ROLES",
    "LEAF_FORMAT",
    "MAX_CARD_BYTES",
    "MAX_SPEC_BYTES",
    "PAYLOAD_TYPE",
    "PREDICATE_TYPE",
    "STATEMENT_TYPE",
    "CardPredicate",
    "CardStatement",
    "CardView",
    "Collection",
    "Exclusion",
    "FingerprintIndexCommitment",
    "Generator",
    "LicenseCount",
    "ManifestCommitment",
    "Publisher",
    "SignatureView",
    "SignedCard",
    "Source",
    "SourceAssigner",
    "SourceDescription",
    "SourceLike",
    "Subject",
    "Tallier",
    "Tally",
    "VerifiedCard",
    "build_card",
    "build_statement",
    "check_statement",
    "described",
    "entry_license",
    "load_spec",
    "parse_statement",
    "read_card_document",
    "read_signed_card",
    "show_card",
    "show_card_file",
    "sign_card",
    "sign_card_file",
    "tally",
    "unverified_card_document",
    "unverified_statement",
    "verify_card",
]
