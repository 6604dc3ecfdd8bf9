"""Signing keys held on a PKCS#11 token (a USB token, an HSM, SoftHSM2 in tests).

The specialized certificates of Circular 08/2016/TT-BQP are issued on USB tokens: the private key
never leaves the device. :class:`TokenKey` makes such a key look like the loaded RSA key the
rest of the hub signs with (:class:`~hub.trust.keystore.OrgSigner`): it offers
``sign(data, PKCS1v15(), SHA256())`` — what :func:`hub.trust.signing.sign_tree`, signxml and the
ledger's checkpoint signer call — and performs it on the token with ``CKM_SHA256_RSA_PKCS``. The
result is the same bytes a software key gives (RSA PKCS#1 v1.5 is deterministic). Exporting the
key (``private_bytes``, ``private_numbers``) is refused: PDF signing from a token would need
pyHanko's own PKCS#11 signer and is not offered by the hub.

A token key is described by a :class:`TokenKeySpec`: the PKCS#11 module, the token label, the
key label, and where the PIN comes from — an environment variable or a file, **never** the
configuration itself (a ``pin`` key is refused). The PIN is read when the session opens and is
kept only by the PKCS#11 library's login state.

What a failure means decides what the hub does: a key the token will not sign with (``CKA_SIGN``
false, a failing probe signature), a refused or locked PIN, a missing key label are
:class:`~hub.errors.ConfigurationError` (exit 3); a token that is not there or opens no session
is :class:`TokenAbsent`, which ``hub run`` treats as transient (exit 4, restarted); once running,
anything that stops the token signing is :class:`TokenUnavailable` with the token's reason, and
the batch in hand is held.

``python-pkcs11`` is imported only when a token key is used, so the hub runs without it when
every key is a file.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from hub.errors import ConfigurationError, TransientError
from hub.reasons import Reason

__all__ = ["TokenAbsent", "TokenKey", "TokenKeySpec", "TokenUnavailable", "token_certificates"]

_SPEC_KEYS = {"module", "token_label", "key_label", "pin_env", "pin_file", "cert"}
PIN_REFUSALS_MAX = 2
"""Logins refused for the PIN in a row after which a running hub stops logging in again: a
token locks its PIN after a few wrong ones, and a held batch is retried every few seconds."""


class TokenUnavailable(TransientError):
    """The token could not sign (removed, session lost, another key under the label): retry
    later, never drop a document. ``detail`` is the token's own reason, in one line."""

    def __init__(self, detail: str) -> None:
        super().__init__(Reason.INTERNAL_ERROR, f"signing token unavailable: {detail}")


class TokenAbsent(ConfigurationError):
    """No token answers to the label, or no session opens on it: the token may be out for a
    moment (unplugged, the HSM or its daemon restarting), not misconfigured.

    A :class:`ConfigurationError` to the tools that only load keys (a signer process reports
    it as its one line and its pool retries); :func:`hub.app.load_keystore` makes it
    :class:`TokenUnavailable`, so ``hub run`` exits 4 and its service manager starts it again
    — exit 3 would keep it down (``RestartPreventExitStatus=3``) after the token is back.
    """


class _PinRefused(ConfigurationError):
    """The token refused the PIN (never retried without bound: :data:`PIN_REFUSALS_MAX`)."""


def _why(exc: BaseException) -> str:
    """One line about a PKCS#11 error: python-pkcs11's carry no message, only a class whose
    docstring says what the return value means."""
    text = " ".join(str(exc).split())
    if not text:
        text = " ".join((type(exc).__doc__ or "").split()).split(". ")[0].rstrip(".")
    return f"{type(exc).__name__}: {text}"[:200] if text else type(exc).__name__


def _close_quietly(session: Any) -> None:
    with contextlib.suppress(Exception):  # a session the token already dropped
        session.close()


@dataclass(frozen=True, slots=True)
class TokenKeySpec:
    """Where a token-held key is: module, token, key label, and where its PIN comes from."""

    module: str
    """Path of the PKCS#11 module (``/usr/lib/softhsm/libsofthsm2.so``, a token vendor's .so)."""
    token_label: str
    """CKA_LABEL of the token (``softhsm2-util --show-slots``, ``pkcs11-tool -L``)."""
    key_label: str
    """CKA_LABEL of the private key on the token."""
    pin_env: str | None = None
    """Environment variable holding the user PIN."""
    pin_file: str | None = None
    """File holding the user PIN (first line; readable by the hub's user only)."""
    cert: str | None = None
    """PEM file with the certificate and its issuing chain; None: the certificates on the token."""

    def __post_init__(self) -> None:
        if (self.pin_env is None) == (self.pin_file is None):
            raise ConfigurationError(
                f"token key {self.key_label!r}: give exactly one of pin_env or pin_file")

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any], where: str, base: Path | None = None
                     ) -> TokenKeySpec:
        """Strict: unknown keys are errors; a PIN written in the configuration is refused."""
        if "pin" in raw:
            raise ConfigurationError(
                f"{where}: a PIN never goes in a configuration file; use pin_env or pin_file")
        unknown = sorted(set(raw) - _SPEC_KEYS)
        if unknown:
            raise ConfigurationError(f"{where}: unknown key {unknown[0]!r}")
        for key in ("module", "token_label", "key_label"):
            if not isinstance(raw.get(key), str) or not raw[key]:
                raise ConfigurationError(f"{where}: {key} is required (a string)")
        values = {k: v for k, v in raw.items() if k in _SPEC_KEYS}
        for key in ("pin_env", "pin_file", "cert"):
            if key in values and not isinstance(values[key], str):
                raise ConfigurationError(f"{where}: {key} must be a string")
        for key in ("pin_file", "cert"):
            if base is not None and values.get(key):
                values[key] = str(base / Path(values[key]).expanduser())
        try:
            return cls(**values)
        except ConfigurationError as exc:
            raise ConfigurationError(f"{where}: {exc}") from None

    def pin(self) -> str:
        """The user PIN, read now from the environment or the file (never logged)."""
        if self.pin_env is not None:
            value = os.environ.get(self.pin_env)
            if not value:
                raise ConfigurationError(
                    f"token {self.token_label!r}: environment variable {self.pin_env} is not set")
            return value
        assert self.pin_file is not None
        try:
            lines = Path(self.pin_file).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ConfigurationError(f"{self.pin_file}: {exc.strerror}") from None
        if not lines or not lines[0].strip():
            raise ConfigurationError(f"{self.pin_file}: empty PIN file")
        return lines[0].strip()


def _mechanism(pad: Any, algorithm: Any) -> Any:
    import pkcs11

    if isinstance(algorithm, Prehashed) or not isinstance(pad, padding.PKCS1v15):
        raise UnsupportedAlgorithm("token keys sign with RSA PKCS#1 v1.5 over the data only")
    by_hash = {"sha256": pkcs11.Mechanism.SHA256_RSA_PKCS,
               "sha384": pkcs11.Mechanism.SHA384_RSA_PKCS,
               "sha512": pkcs11.Mechanism.SHA512_RSA_PKCS}
    mechanism = by_hash.get(getattr(algorithm, "name", ""))
    if mechanism is None:
        raise UnsupportedAlgorithm(f"token keys do not sign with {algorithm!r}")
    return mechanism


def _open(spec: TokenKeySpec) -> tuple[Any, Any]:
    """Open a logged-in session and find the private key; every failure is one clear line."""
    import pkcs11

    where = f"token {spec.token_label!r}"
    if not Path(spec.module).is_file():
        raise ConfigurationError(f"{where}: PKCS#11 module {spec.module} not found")
    pin = spec.pin()
    try:
        token = pkcs11.lib(spec.module).get_token(token_label=spec.token_label)
        session = token.open(user_pin=pin)
    except pkcs11.NoSuchToken:
        raise TokenAbsent(f"{where}: no such token in {spec.module} (not plugged in?)"
                          ) from None
    except (pkcs11.PinIncorrect, pkcs11.PinInvalid, pkcs11.PinLenRange):
        raise _PinRefused(f"{where}: the PIN was refused") from None
    except pkcs11.PinLocked:
        raise ConfigurationError(f"{where}: the PIN is locked") from None
    except pkcs11.PKCS11Error as exc:
        raise TokenAbsent(f"{where}: cannot open a session ({_why(exc)})") from None
    try:
        key = session.get_key(object_class=pkcs11.ObjectClass.PRIVATE_KEY,
                              label=spec.key_label)
        rsa_key = key.key_type == pkcs11.KeyType.RSA
        may_sign = bool(key[pkcs11.Attribute.SIGN])
    except pkcs11.NoSuchKey:
        _close_quietly(session)
        raise ConfigurationError(f"{where}: no private key labelled {spec.key_label!r}") from None
    except pkcs11.MultipleObjectsReturned:
        _close_quietly(session)
        raise ConfigurationError(
            f"{where}: several private keys labelled {spec.key_label!r}") from None
    except pkcs11.PKCS11Error as exc:
        _close_quietly(session)
        raise TokenAbsent(f"{where}: cannot read key {spec.key_label!r} ({_why(exc)})") from None
    if not rsa_key:
        _close_quietly(session)
        raise ConfigurationError(f"{where}: key {spec.key_label!r} is not an RSA key")
    if not may_sign:
        # python-pkcs11 then offers no sign() at all: say so instead of an AttributeError
        _close_quietly(session)
        raise ConfigurationError(
            f"{where}: key {spec.key_label!r} may not sign (its CKA_SIGN attribute is false)")
    return session, key


class TokenKey(rsa.RSAPrivateKey):
    """An RSA private key on a PKCS#11 token, signing through the token.

    Built by :meth:`open`, which checks that the key signs for ``public_key`` (the
    certificate's key) before the hub starts. One session per key; signing is serialized by a
    lock (PKCS#11 sessions are not shared between threads). A lost session is reopened once,
    on the same key only: the key found again under the label must have the public key proven
    at open (a token re-plugged with another key under the label, a rotated key, is never
    signed with). Every signature is verified under that public key before it is returned
    (~0.02 ms beside ~0.65 ms on the token). If the token still cannot sign,
    :class:`TokenUnavailable` (transient) is raised with the token's reason.
    """

    def __init__(self, spec: TokenKeySpec, public_key: rsa.RSAPublicKey, session: Any,
                 key: Any) -> None:
        self.spec = spec
        self._public = public_key
        self._session = session
        self._key = key
        self._lock = threading.Lock()
        self._pin_refusals = 0

    @classmethod
    def open(cls, spec: TokenKeySpec, public_key: rsa.RSAPublicKey | None = None) -> TokenKey:
        """Log in, find the key, and prove it signs (with ``public_key``: for that key).

        A key the token will not sign with (a mechanism it lacks, a key that wants its PIN for
        every signature) is a :class:`ConfigurationError`: no retry would change it."""
        import pkcs11

        session, key = _open(spec)
        where = f"token {spec.token_label!r}: key {spec.key_label!r}"
        try:
            if public_key is None:
                public_key = _public_key_of(key)
        except (pkcs11.PKCS11Error, ValueError) as exc:
            _close_quietly(session)
            raise ConfigurationError(f"{where}: cannot read its public key ({_why(exc)})"
                                     ) from None
        probe = b"edxml-hub token key check"
        try:
            value = bytes(key.sign(probe, mechanism=pkcs11.Mechanism.SHA256_RSA_PKCS))
        except pkcs11.PKCS11Error as exc:
            _close_quietly(session)
            raise ConfigurationError(
                f"{where}: cannot sign with RSA PKCS#1 v1.5 and SHA-256 ({_why(exc)})") from None
        try:
            public_key.verify(value, probe, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            _close_quietly(session)
            raise ConfigurationError(f"{where} does not match the certificate") from None
        return cls(spec, public_key, session, key)

    def sign(self, data: bytes, padding: Any, algorithm: Any) -> bytes:
        import pkcs11

        mechanism = _mechanism(padding, algorithm)
        with self._lock:
            try:
                value = bytes(self._key.sign(data, mechanism=mechanism))
                if self._verifies(value, data, padding, algorithm):
                    return value
                # Not the proven key's signature: the handle names another key now.
            except pkcs11.PKCS11Error:
                pass  # the session may be gone (token re-plugged, daemon restarted): once more
            try:
                self._reopen()
                value = bytes(self._key.sign(data, mechanism=mechanism))
            except (pkcs11.PKCS11Error, ConfigurationError) as exc:
                reason = str(exc) if isinstance(exc, ConfigurationError) else (
                    f"token {self.spec.token_label!r}: {_why(exc)}")
                raise TokenUnavailable(reason) from None
            if not self._verifies(value, data, padding, algorithm):
                raise TokenUnavailable(
                    f"token {self.spec.token_label!r}: key {self.spec.key_label!r} made a "
                    "signature that does not verify under its certificate")
            return value

    def _verifies(self, value: bytes, data: bytes, pad: Any, algorithm: Any) -> bool:
        try:
            self._public.verify(value, data, pad, algorithm)
        except InvalidSignature:
            return False
        return True

    def _reopen(self) -> None:
        """A new session on the key proven at open, or :class:`ConfigurationError` saying why
        not. After :data:`PIN_REFUSALS_MAX` refused PINs in a row, no login is tried again."""
        import pkcs11

        where = f"token {self.spec.token_label!r}"
        if self._pin_refusals >= PIN_REFUSALS_MAX:
            raise ConfigurationError(
                f"{where}: the PIN was refused {self._pin_refusals} times; not trying it again "
                "(a token locks its PIN): restart the hub with the right PIN")
        _close_quietly(self._session)
        try:
            session, key = _open(self.spec)
        except _PinRefused:
            self._pin_refusals += 1
            raise
        self._pin_refusals = 0
        try:
            found = _public_key_of(key).public_numbers()
        except (pkcs11.PKCS11Error, ValueError) as exc:
            _close_quietly(session)
            raise TokenAbsent(f"{where}: cannot read the public key of {self.spec.key_label!r} "
                              f"({_why(exc)})") from None
        if found != self._public.public_numbers():
            _close_quietly(session)
            raise ConfigurationError(
                f"{where}: the key labelled {self.spec.key_label!r} is not the key proven at "
                "start-up (another token, or the key was replaced): not signing with it")
        self._session, self._key = session, key

    def close(self) -> None:
        _close_quietly(self._session)

    # -- what an RSA private key offers, as far as a token allows -------------------------------
    @property
    def key_size(self) -> int:
        return self._public.key_size

    def public_key(self) -> rsa.RSAPublicKey:
        return self._public

    def decrypt(self, ciphertext: bytes, padding: Any) -> bytes:
        raise UnsupportedAlgorithm("the hub only signs with token keys")

    def private_numbers(self) -> rsa.RSAPrivateNumbers:
        self._not_exportable()

    def private_bytes(self, encoding: serialization.Encoding,
                      format: serialization.PrivateFormat,
                      encryption_algorithm: serialization.KeySerializationEncryption) -> bytes:
        self._not_exportable()

    def _not_exportable(self) -> NoReturn:
        raise TypeError(f"the key {self.spec.key_label!r} is held on token "
                        f"{self.spec.token_label!r} and cannot be exported")

    def __copy__(self) -> TokenKey:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> TokenKey:
        return self

    def __repr__(self) -> str:
        return f"TokenKey(token={self.spec.token_label!r}, key={self.spec.key_label!r})"


def _public_key_of(key: Any) -> rsa.RSAPublicKey:
    import pkcs11

    modulus = int.from_bytes(key[pkcs11.Attribute.MODULUS], "big")
    exponent = int.from_bytes(key[pkcs11.Attribute.PUBLIC_EXPONENT], "big")
    return rsa.RSAPublicNumbers(exponent, modulus).public_key()


def token_certificates(spec: TokenKeySpec) -> tuple[x509.Certificate, tuple[x509.Certificate, ...]]:
    """The certificate of the token key and the other certificates on the token (its chain).

    USB tokens of the specialized CA carry the signer's certificate next to the key; the one
    whose public key is the key's is the signer's.
    """
    import pkcs11

    session, key = _open(spec)
    try:
        public = _public_key_of(key).public_numbers()
        certs = [x509.load_der_x509_certificate(bytes(obj[pkcs11.Attribute.VALUE]))
                 for obj in session.get_objects(
                     {pkcs11.Attribute.CLASS: pkcs11.ObjectClass.CERTIFICATE})]
    except (pkcs11.PKCS11Error, ValueError) as exc:
        raise ConfigurationError(
            f"token {spec.token_label!r}: cannot read certificates ({_why(exc)})") from None
    finally:
        _close_quietly(session)
    leaf = [c for c in certs
            if isinstance(c.public_key(), rsa.RSAPublicKey)
            and c.public_key().public_numbers() == public]  # type: ignore[union-attr]
    if not leaf:
        raise ConfigurationError(
            f"token {spec.token_label!r}: no certificate for key {spec.key_label!r} on the token")
    return leaf[0], tuple(c for c in certs if c is not leaf[0])
