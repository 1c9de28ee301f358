"""provenance: signed dataset cards, signed exclusion lists, and verifiers.

Modules (pure core first, I/O shell last):

- ``errors``: the exception hierarchy; the CLI maps it to exit codes.
- ``_json``: strict JSON loading, RFC 8785 canonical bytes, base64.
- ``keys``: key generation, loading, keyids, signing and verifying (the only user of cryptography).
- ``envelope``: DSSE envelopes (PAE, sign, verify -> VerifiedPayload).
- ``trust``: the trust store (keys, roles, list thresholds).
- ``merkle``: RFC 9162 Merkle trees and proofs.
- ``manifest``: manifest entries and building them from files or records.
- ``card``: dataset cards (in-toto Statement + predicate) built from a spec and a manifest.
- ``verify``: composes the checks into a Report.
"""

__version__ = "0.1.0"
