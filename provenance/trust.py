"""The trust store: which public keys are trusted, for which roles, and list policies.

A key is trusted for one role only (a key listed under two roles is refused, on load and when
adding), so that an auditor's co-signature is never the publisher's own signature again. Each key
is stored with its PEM, and its keyid is recomputed from the PEM when the store is loaded, so a
store cannot claim one keyid for another key. Exclusion lists name the keys (and the threshold of
them) that may sign each list's repository, and whether cards must have applied the list
(``required``).

A ``transparency-log`` key signs a log's checkpoints (signed notes): it is Ed25519, and its name
is the log's origin, which is also the note key name its signatures carry.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from provenance import _json, schema
from provenance.errors import FormatError, InputError, SignatureError
from provenance.keys import PublicKey
from provenance.signednote import valid_key_name

Role = Literal["dataset-publisher", "list-publisher", "auditor", "transparency-log"]
ROLES: tuple[Role, ...] = ("dataset-publisher", "list-publisher", "auditor", "transparency-log")
MAX_TRUST_STORE_BYTES = 4 * 1024 * 1024


def parse_time(text: str, *, what: str) -> dt.datetime:
    """Parse an RFC 3339 UTC timestamp of the form ``YYYY-MM-DDTHH:MM:SSZ``.

    Raises:
        FormatError: any other form (offsets, fractions, naive times are refused).
    """
    try:
        value = dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        raise FormatError(f"{what}: {text!r} is not a UTC time like 2026-01-31T12:00:00Z") from None
    return value.replace(tzinfo=dt.UTC)


def format_time(value: dt.datetime) -> str:
    """Format an aware datetime as ``YYYY-MM-DDTHH:MM:SSZ`` (UTC, seconds)."""
    if value.tzinfo is None:
        raise ValueError("naive datetime")
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_log_key(name: str, key: PublicKey, *, error: type[InputError], where: str) -> None:
    """A transparency-log key signs notes: Ed25519, named by a valid note key name (the origin)."""
    if key.algorithm != "ed25519":
        raise error(f"{where}: a transparency-log key must be Ed25519, not {key.algorithm}")
    if not valid_key_name(name):
        raise error(
            f"{where}: {name!r} cannot be a log origin (the key's name): it must be non-empty,"
            " without spaces or '+'"
        )


@dataclass(frozen=True, slots=True)
class TrustedKey:
    """A public key with the name and roles it is trusted for."""

    name: str
    key: PublicKey
    roles: frozenset[str]
    not_before: dt.datetime | None = None
    not_after: dt.datetime | None = None

    def __post_init__(self) -> None:
        if len(self.roles) != 1:
            raise FormatError(
                f"key {self.keyid} ({self.name}) has the roles {', '.join(sorted(self.roles))};"
                " a key is trusted for one role only: give each role its own key"
            )

    @property
    def keyid(self) -> str:
        """The key's id, derived from the key."""
        return self.key.keyid

    @property
    def role(self) -> str:
        """The one role the key is trusted for."""
        return next(iter(self.roles))

    def valid_at(self, at: dt.datetime) -> bool:
        """Whether ``at`` falls inside the key's validity window."""
        if self.not_before is not None and at < self.not_before:
            return False
        return not (self.not_after is not None and at >= self.not_after)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        data: dict[str, Any] = {
            "keyid": self.keyid,
            "name": self.name,
            "algorithm": self.key.algorithm,
            "publicKey": self.key.to_pem(),
            "roles": sorted(self.roles),
        }
        if self.not_before is not None:
            data["notBefore"] = format_time(self.not_before)
        if self.not_after is not None:
            data["notAfter"] = format_time(self.not_after)
        return data


@dataclass(frozen=True, slots=True)
class ListPolicy:
    """Who may sign exclusion list ``name``, how many of them, and whether cards must apply it."""

    name: str
    keyids: tuple[str, ...] = ()
    threshold: int = 1
    required: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form."""
        return {"keyids": list(self.keyids), "threshold": self.threshold, "required": self.required}


@dataclass(frozen=True, slots=True)
class TrustStore:
    """Trusted keys by keyid, and list policies by list name.

    ``real_time``, when set, is the system clock of a run whose clock was overridden (for tests
    or to reproduce a run): a key is then trusted only if its window holds both the time asked
    about and the real time, so that moving the clock never revives an expired key.
    """

    keys: Mapping[str, TrustedKey] = field(default_factory=dict)
    lists: Mapping[str, ListPolicy] = field(default_factory=dict)
    real_time: dt.datetime | None = None

    @classmethod
    def from_json(cls, data: bytes, *, what: str) -> TrustStore:
        """Parse and check a trust store.

        Raises:
            FormatError, SchemaError: malformed, a keyid that does not match its key, a key listed
                twice, or a list policy naming an unknown key or an impossible threshold.
        """
        if len(data) > MAX_TRUST_STORE_BYTES:
            raise FormatError(f"{what}: larger than {MAX_TRUST_STORE_BYTES} bytes")
        document = _json.loads(data, what=what)
        schema.validate(document, schema.TRUST_STORE, what=what)
        keys: dict[str, TrustedKey] = {}
        for index, item in enumerate(document["keys"]):
            where = f"{what}: keys/{index}"
            public = PublicKey.from_pem(item["publicKey"].encode("ascii"), what=where)
            if public.keyid != item["keyid"]:
                raise FormatError(
                    f"{where}: keyid {item['keyid']} does not match its key ({public.keyid})"
                )
            if public.keyid in keys:
                raise FormatError(
                    f"{where}: key {public.keyid} is listed twice; a key is trusted for one"
                    " role only"
                )
            if len(item["roles"]) > 1:
                raise FormatError(
                    f"{where}: key {public.keyid} has the roles {', '.join(item['roles'])}; a key"
                    " is trusted for one role only: give each role its own key"
                )
            if "transparency-log" in item["roles"]:
                _check_log_key(item["name"], public, error=FormatError, where=where)
            keys[public.keyid] = TrustedKey(
                name=item["name"],
                key=public,
                roles=frozenset(item["roles"]),
                not_before=parse_time(item["notBefore"], what=where)
                if "notBefore" in item
                else None,
                not_after=parse_time(item["notAfter"], what=where) if "notAfter" in item else None,
            )
        lists: dict[str, ListPolicy] = {}
        for name, item in sorted(document.get("lists", {}).items()):
            where = f"{what}: lists/{name}"
            keyids = tuple(dict.fromkeys(item.get("keyids", [])))
            for keyid in keyids:
                if keyid not in keys or "list-publisher" not in keys[keyid].roles:
                    raise FormatError(f"{where}: key {keyid} is not a trusted list-publisher key")
            policy = ListPolicy(name, keyids, item.get("threshold", 1), item.get("required", False))
            if keyids and policy.threshold > len(keyids):
                raise FormatError(
                    f"{where}: threshold {policy.threshold} exceeds its {len(keyids)} key(s)"
                )
            lists[name] = policy
        return cls(keys, lists)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form (keys sorted by keyid)."""
        return {
            "version": 1,
            "keys": [self.keys[k].to_dict() for k in sorted(self.keys)],
            "lists": {name: self.lists[name].to_dict() for name in sorted(self.lists)},
        }

    def to_json(self) -> bytes:
        """Return deterministic JSON bytes."""
        return _json.pretty(self.to_dict())

    def keys_for(self, role: Role, *, at: dt.datetime) -> dict[str, PublicKey]:
        """Return the keys trusted for ``role`` at time ``at``, by keyid (possibly empty).

        With :attr:`real_time` set, a key must be inside its window at that time too.
        """
        return {
            keyid: trusted.key
            for keyid, trusted in self.keys.items()
            if role in trusted.roles and self.why_not_valid(trusted, at=at) is None
        }

    def keys_with_role(self, role: Role) -> dict[str, PublicKey]:
        """Return every key listed for ``role``, whatever its validity window, by keyid."""
        return {k: t.key for k, t in self.keys.items() if role in t.roles}

    def why_not_valid(self, trusted: TrustedKey, *, at: dt.datetime) -> str | None:
        """Return why ``trusted`` is not trusted at ``at`` (expired, not yet valid), or None."""
        for when, label in ((at, ""), (self.real_time, " on the real clock")):
            if when is None:
                continue
            if trusted.not_before is not None and when < trusted.not_before:
                return f"trust begins only at {format_time(trusted.not_before)}{label}"
            if trusted.not_after is not None and when >= trusted.not_after:
                return f"trust expired at {format_time(trusted.not_after)}{label}"
        return None

    def with_real_time(self, real_time: dt.datetime) -> TrustStore:
        """Return a copy that also judges keys at ``real_time`` (see :attr:`real_time`)."""
        return replace(self, real_time=real_time)

    def require_keys(self, role: Role, *, at: dt.datetime, what: str) -> dict[str, PublicKey]:
        """Like :meth:`keys_for`, but an empty result is an error.

        Raises:
            InputError: no key is listed for ``role`` at all (vacuous trust is refused).
            SignatureError: keys are listed for ``role``, but none is valid at ``at`` (a
                verified "no": the store says these keys may not be trusted now).
        """
        keys = self.keys_for(role, at=at)
        if not keys:
            listed = [t for t in self.keys.values() if role in t.roles]
            if not listed:
                raise InputError(f"{what}: no key is trusted for the role {role!r}")
            reasons = "; ".join(
                f"{t.name} ({t.keyid[:16]}): {self.why_not_valid(t, at=at)}" for t in listed
            )
            raise SignatureError(f"{what}: no {role} key is valid at {format_time(at)}: {reasons}")
        return keys

    def name_of(self, keyid: str) -> str:
        """Return the name recorded for ``keyid``, or the keyid itself."""
        trusted = self.keys.get(keyid)
        return trusted.name if trusted else keyid

    def with_key(
        self,
        key: PublicKey,
        *,
        name: str,
        role: Role,
        list_name: str | None = None,
        threshold: int | None = None,
    ) -> TrustStore:
        """Return a copy trusting ``key`` for ``role`` (and for list ``list_name``).

        Adding a key again for the role it already has (a list-publisher key for one more list)
        is allowed; adding it for another role is not.

        Raises:
            InputError: the key is already trusted for another role; ``list_name`` missing for
                the role list-publisher or given for another role; a threshold without a list,
                below 1 or above the list's number of keys.
        """
        if list_name is not None and role != "list-publisher":
            raise InputError("a list name applies only to the role list-publisher")
        if threshold is not None and list_name is None:
            raise InputError("a threshold applies only to a list")
        if list_name is None and role == "list-publisher":
            raise InputError(
                "a list-publisher key is trusted for the exclusion lists it may sign: name the list"
            )
        keys = dict(self.keys)
        existing = keys.get(key.keyid)
        if role == "transparency-log":
            _check_log_key(name, key, error=InputError, where=f"key {key.keyid}")
            if existing is not None and role in existing.roles and existing.name != name:
                raise InputError(
                    f"key {key.keyid} is already trusted as the transparency log"
                    f" {existing.name!r}; a log key is trusted under its log's origin only"
                )
        if existing is not None and role not in existing.roles:
            raise InputError(
                f"key {key.keyid} is already trusted as {existing.role} ({existing.name}); a key"
                f" is trusted for one role only: use a separate key for {role}"
            )
        if existing is None:
            keys[key.keyid] = TrustedKey(name=name, key=key, roles=frozenset({role}))
        lists = dict(self.lists)
        if list_name is not None:
            policy = lists.get(list_name, ListPolicy(list_name))
            keyids = tuple(dict.fromkeys((*policy.keyids, key.keyid)))
            new_threshold = threshold if threshold is not None else policy.threshold
            if new_threshold < 1 or new_threshold > len(keyids):
                raise InputError(
                    f"threshold {new_threshold} for list {list_name!r} must be between 1 and"
                    f" its {len(keyids)} key(s)"
                )
            lists[list_name] = replace(policy, keyids=keyids, threshold=new_threshold)
        return TrustStore(keys, lists)

    def with_required(self, list_name: str) -> TrustStore:
        """Return a copy in which cards must have applied ``list_name``."""
        lists = dict(self.lists)
        lists[list_name] = replace(lists.get(list_name, ListPolicy(list_name)), required=True)
        return TrustStore(self.keys, lists)


# ----------------------------------------------------------------------------------------------
# I/O shell: trust store files


def read_trust_store(path: Path) -> TrustStore:
    """Read and check the trust store at ``path``.

    Raises:
        InputError: missing, unreadable, not a regular file, or larger than
            :data:`MAX_TRUST_STORE_BYTES`.
        FormatError, SchemaError: not a valid trust store.
    """
    from provenance._files import read_bytes

    return TrustStore.from_json(read_bytes(path, limit=MAX_TRUST_STORE_BYTES), what=str(path))


def _write_trust_store(path: Path, store: TrustStore) -> None:
    from provenance._files import atomic_write

    atomic_write(path, store.to_json())


def add_trusted_key(
    trust_path: Path,
    public_key_path: Path,
    *,
    name: str,
    role: Role,
    list_name: str | None = None,
    threshold: int | None = None,
) -> PublicKey:
    """Trust the public key at ``public_key_path`` for ``role`` in the store at ``trust_path``
    (created if missing), as :meth:`TrustStore.with_key` does.

    Returns:
        The key now trusted.

    Raises:
        InputError: see :meth:`TrustStore.with_key` and :func:`read_trust_store`.
        KeyFormatError: the key file is not a public key.
        LocalIOError: the store cannot be written.
    """
    from provenance.keys import load_public_key

    store = read_trust_store(trust_path) if trust_path.exists() else TrustStore()
    key = load_public_key(public_key_path)
    store = store.with_key(key, name=name, role=role, list_name=list_name, threshold=threshold)
    _write_trust_store(trust_path, store)
    return key


def require_list(trust_path: Path, list_name: str) -> TrustStore:
    """Make the store at ``trust_path`` require cards to have applied ``list_name``.

    Returns:
        The store written.

    Raises:
        InputError, FormatError, SchemaError: see :func:`read_trust_store`.
        LocalIOError: the store cannot be written.
    """
    store = read_trust_store(trust_path).with_required(list_name)
    _write_trust_store(trust_path, store)
    return store
