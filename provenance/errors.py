"""One exception hierarchy for the whole toolkit.

The CLI maps each family to an exit code in one place (``provenance.cli``):

- ``VerificationError`` -> 1: a verified "no" (bad or untrusted signature, rollback, expired,
  digest mismatch, exclusion violation).
- ``InputError`` -> 2: bad input or usage (malformed, missing or unreadable file, schema error).
- ``UnavailableError`` -> 3: could not answer (network failure, timeout, I/O error).
"""

from __future__ import annotations


class ProvenanceError(Exception):
    """Root of every error this package raises on purpose."""

    exit_code = 3


class InputError(ProvenanceError):
    """The input is malformed, missing, unreadable or of the wrong kind."""

    exit_code = 2


class FormatError(InputError):
    """Bytes, JSON, base64 or another encoding is malformed."""


class SchemaError(FormatError):
    """A document does not match its JSON Schema."""


class InvalidURLError(FormatError):
    """A URL or host that WHATWG parsing rejects, or whose host is not a valid domain name.

    When it is a record's or manifest entry's URL, that record "cannot be evaluated" against
    URL and domain entries: it is reported, never treated as clean.
    """


class ParameterError(InputError):
    """A parameter of a call has a value it does not accept.

    The message names the parameter as the library calls it (``threshold 0: must be ...``); a
    front end names its own option instead with :meth:`naming` (the CLI maps ``parameter`` to
    the option that set it).
    """

    def __init__(self, parameter: str, detail: str, *, value: object = None) -> None:
        self.parameter = parameter
        """The parameter's name, e.g. ``expires_in``."""
        self.value = value
        """The value refused, when the message shows it."""
        self.detail = detail
        """What is wrong with it."""
        super().__init__(self.naming(parameter))

    def naming(self, label: str) -> str:
        """Return the message with the parameter called ``label``."""
        shown = label if self.value is None else f"{label} {self.value}"
        return f"{shown}: {self.detail}"


class KeyFormatError(InputError):
    """A key file cannot be loaded (wrong format, unsupported algorithm, bad passphrase)."""


class PassphraseNeededError(KeyFormatError):
    """A private key is encrypted and no passphrase was given."""


class OutputExistsError(InputError):
    """A file to write exists already, and replacing it was not asked for."""


class UnsafePathError(InputError):
    """A path escapes its root, is a special file, or cannot be represented."""


class VerificationError(ProvenanceError):
    """An integrity or authenticity check failed: do not trust this."""

    exit_code = 1


class SignatureError(VerificationError):
    """A signature does not verify, or fewer than the threshold of trusted keys signed."""


class DocumentTypeError(VerificationError):
    """A signature verified, but the signed document is not of the kind expected."""


class DigestMismatchError(VerificationError):
    """Content does not match the digest it is committed to."""


class RollbackError(VerificationError):
    """A version older than the trusted one was offered."""


class ExpiredError(VerificationError):
    """Signed metadata has expired."""


class ProvenanceWarning(UserWarning):
    """Something a user should know that does not stop the command.

    The library reports it with :func:`warnings.warn`; the CLI prints each one on stderr as
    ``warning: <message>`` (and keeps other libraries' warnings off the screen).
    """


class UnavailableError(ProvenanceError):
    """The question could not be answered (network, timeout, local I/O)."""

    exit_code = 3


class FetchError(UnavailableError):
    """A download failed: network error, timeout, size limit, HTTP status, refused redirect."""


class LocalIOError(UnavailableError):
    """Reading or writing a local file failed, or a file changed while it was read."""


class NotCachedError(InputError):
    """An exclusion list (or one version of it) asked for is not in the local cache.

    Bad input (exit 2), like a missing file: the name is wrong, or the list must be fetched first.
    """
