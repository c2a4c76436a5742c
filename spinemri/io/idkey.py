"""The secret key of the DICOM pseudonym: where it lives, how it is made, its fingerprint.

Without an id given for a case (``--patient-id``, the cohort folder or manifest id), a DICOM
image is named ``anon-`` + :func:`pseudonym` of its PatientID: the first 16 hex characters of
HMAC-SHA-256 keyed with a per-project secret (docs/robustness.md, "Threat model: identifiers").
A hash of the PatientID with a public salt (spinemri < issue 16) is not a pseudonym: numeric
MRNs are recovered by hashing every candidate, about a second per million.

Where the key comes from, first match wins (:func:`resolve_id_key`):

1. ``$SPINEMRI_ID_KEY``: the key itself (any text of at least :data:`MIN_KEY_CHARS` characters);
2. deprecated: ``$SPINEMRI_ID_SALT`` set to a private salt (not the public ``"spinemri"``,
   which is ignored) keeps the old ``sha256(salt + PatientID)`` pseudonyms of existing studies,
   with a :class:`~spinemri.errors.SpinemriWarning`; it wins over a key file so that a study's
   pseudonyms never change because a key file appeared. To migrate, unset it (pseudonyms change);
3. ``$SPINEMRI_ID_KEY_FILE``: a file holding the key (created when missing, see 4);
4. the key file ``$XDG_CONFIG_HOME/spinemri/id_key`` (default ``~/.config/spinemri/id_key``),
   created on first use with 32 random bytes (64 hex digits), mode 0600, atomically (several
   worker processes may create it at once: one wins, all use it).

The key never enters an output; provenance records only its fingerprint (:attr:`IdKey.fingerprint`,
first 8 hex digits of the SHA-256 of the key). Losing the key breaks re-linking: the same
PatientID then gets another pseudonym. A key file inside a run's ``--out`` is refused
(:func:`check_key_outside`).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, InputError, SpinemriWarning

__all__ = [
    "ID_KEY_ENV",
    "ID_KEY_FILE_ENV",
    "ID_SALT_ENV",
    "PUBLIC_SALT",
    "MIN_KEY_CHARS",
    "IdKey",
    "default_key_path",
    "key_path",
    "resolve_id_key",
    "pseudonym",
    "key_provenance",
    "check_key_outside",
]

#: Environment variable holding the key itself.
ID_KEY_ENV = "SPINEMRI_ID_KEY"
#: Environment variable naming the key file (created when missing).
ID_KEY_FILE_ENV = "SPINEMRI_ID_KEY_FILE"
#: Deprecated: environment variable of the salt of the old ``sha256(salt + PatientID)`` pseudonym.
ID_SALT_ENV = "SPINEMRI_ID_SALT"
#: The public salt of spinemri < issue 16; never used any more (set as SPINEMRI_ID_SALT it is ignored).
PUBLIC_SALT = "spinemri"
#: Shortest key accepted from ``$SPINEMRI_ID_KEY`` or a key file.
MIN_KEY_CHARS = 16
#: Hex characters of a pseudonym.
PSEUDONYM_HEX = 16


@dataclass(frozen=True)
class IdKey:
    """The secret of the pseudonym and where it came from (its repr never shows the secret).

    Attributes
    ----------
    secret : bytes
        The key (HMAC scheme) or the legacy salt.
    scheme : str
        ``"hmac-sha256"``, or ``"salted-sha256"`` for the deprecated ``$SPINEMRI_ID_SALT``.
    source : str
        ``"env:SPINEMRI_ID_KEY"``, ``"file"``, ``"file (created)"`` or ``"env:SPINEMRI_ID_SALT"``.
    path : Path or None
        The key file, when the key came from one.
    """

    secret: bytes = field(repr=False)
    scheme: str
    source: str
    path: Path | None = None

    @property
    def fingerprint(self) -> str:
        """First 8 hex digits of the SHA-256 of the secret: identifies the key, does not reveal it.

        Returns
        -------
        str
            8 lower-case hex characters.
        """
        return hashlib.sha256(self.secret).hexdigest()[:8]


def default_key_path() -> Path:
    """The key file used when neither ``$SPINEMRI_ID_KEY`` nor ``$SPINEMRI_ID_KEY_FILE`` is set.

    Returns
    -------
    Path
        ``$XDG_CONFIG_HOME/spinemri/id_key``, or ``~/.config/spinemri/id_key``.
    """
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "spinemri" / "id_key"


def key_path() -> Path | None:
    """The key file in use, or None when the key (or the legacy salt) comes from the environment.

    Returns
    -------
    Path or None
        ``$SPINEMRI_ID_KEY_FILE`` or :func:`default_key_path`; None with ``$SPINEMRI_ID_KEY``
        or a private ``$SPINEMRI_ID_SALT`` set.
    """
    if os.environ.get(ID_KEY_ENV) or _legacy_salt() is not None:
        return None
    named = os.environ.get(ID_KEY_FILE_ENV)
    return Path(named).expanduser() if named else default_key_path()


def _legacy_salt() -> str | None:
    salt = os.environ.get(ID_SALT_ENV)
    return salt if salt and salt != PUBLIC_SALT else None


def _checked(text: str, where: str) -> bytes:
    key = text.strip()
    if len(key) < MIN_KEY_CHARS:
        raise ConfigError(
            f"{where}: the pseudonym key has {len(key)} characters, fewer than {MIN_KEY_CHARS}; a short key "
            "can be guessed. Use a long random text (e.g. python -c 'import secrets; "
            "print(secrets.token_hex(32))') or remove it to let spinemri create one"
        )
    return key.encode("utf-8")


def _read_key_file(path: Path) -> bytes:
    try:
        return _checked(path.read_text(encoding="utf-8"), str(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            f"{path}: the pseudonym key file cannot be read ({exc}); fix its permissions, or point "
            f"${ID_KEY_FILE_ENV} at another file"
        ) from exc


def _create_key_file(path: Path) -> bytes:
    """Create ``path`` with a random key, mode 0600, atomically; the key of whoever created it first."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, (secrets.token_hex(32) + "\n").encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.link(tmp, path)  # fails when another process created the key first: then use that one
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    except OSError as exc:
        raise ConfigError(
            f"{path}: the pseudonym key file cannot be created ({exc.strerror or exc}); set "
            f"${ID_KEY_FILE_ENV} to a writable place outside the outputs, or ${ID_KEY_ENV} to the key"
        ) from exc
    return _read_key_file(path)


def resolve_id_key(*, create: bool = True) -> IdKey | None:
    """The key of the pseudonym (the order of the module docstring).

    Parameters
    ----------
    create : bool, default True
        Create the key file when it is missing; with False a missing file gives None.

    Returns
    -------
    IdKey or None
        None only when ``create`` is False and no key exists yet.

    Raises
    ------
    ConfigError
        A key shorter than :data:`MIN_KEY_CHARS`, or a key file that cannot be read or created.
    """
    env_key = os.environ.get(ID_KEY_ENV)
    if env_key:
        return IdKey(_checked(env_key, f"${ID_KEY_ENV}"), "hmac-sha256", f"env:{ID_KEY_ENV}")
    salt = _legacy_salt()
    if salt is not None:
        warnings.warn(
            f"${ID_SALT_ENV} is deprecated: the pseudonym is still sha256(salt + PatientID) for existing "
            f"studies; set ${ID_KEY_ENV} (or let spinemri create {default_key_path()}) for a keyed "
            "HMAC-SHA-256 pseudonym (pseudonyms then change; docs/robustness.md)",
            SpinemriWarning,
            stacklevel=2,
        )
        return IdKey(salt.encode("utf-8"), "salted-sha256", f"env:{ID_SALT_ENV}")
    path = key_path()
    assert path is not None
    if path.is_file():
        return IdKey(_read_key_file(path), "hmac-sha256", "file", path)
    if path.exists():
        raise ConfigError(
            f"{path}: the pseudonym key file is not a regular file; remove it or set ${ID_KEY_FILE_ENV}"
        )
    if not create:
        return None
    return IdKey(_create_key_file(path), "hmac-sha256", "file (created)", path)


def pseudonym(patient_id: str, key: IdKey) -> str:
    """The pseudonym of a DICOM PatientID under ``key``.

    Parameters
    ----------
    patient_id : str
        The DICOM PatientID (not empty).
    key : IdKey
        From :func:`resolve_id_key`.

    Returns
    -------
    str
        16 lower-case hex characters: HMAC-SHA-256(key, PatientID) (or, for the deprecated
        salt, SHA-256(salt + PatientID)), truncated.
    """
    data = str(patient_id).encode("utf-8")
    if key.scheme == "salted-sha256":
        return hashlib.sha256(key.secret + data).hexdigest()[:PSEUDONYM_HEX]
    return hmac.new(key.secret, data, hashlib.sha256).hexdigest()[:PSEUDONYM_HEX]


def key_provenance() -> dict[str, str] | None:
    """What provenance records of the key in use: scheme, source and fingerprint, never the key.

    Returns
    -------
    dict of str to str or None
        ``{"scheme", "source", "fingerprint"}``; None when no key exists (none was needed) or
        the key configuration is invalid.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SpinemriWarning)
            key = resolve_id_key(create=False)
    except ConfigError:
        return None
    if key is None:
        return None
    source = "file" if key.source.startswith("file") else key.source
    return {"scheme": key.scheme, "source": source, "fingerprint": key.fingerprint}


def check_key_outside(out: str | os.PathLike[str]) -> None:
    """Refuse a key file inside an output folder (outputs are shared; the key must not be).

    Parameters
    ----------
    out : path-like
        A run's ``--out``.

    Raises
    ------
    InputError
        The key file (``$SPINEMRI_ID_KEY_FILE`` or the default) lies inside ``out``.
    """
    path = key_path()
    if path is None:
        return
    try:
        path.resolve().relative_to(Path(out).resolve())
    except ValueError:
        return
    raise InputError(
        f"output folder {out} would contain the pseudonym key file {path}; the key must stay outside "
        f"the outputs: choose another output folder or set ${ID_KEY_FILE_ENV} to a file elsewhere"
    )
