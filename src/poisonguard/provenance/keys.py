"""Ed25519 keys: generate, store, load, sign and verify.

The private key is written as PKCS#8 PEM (encrypted with the passphrase when one is given) with
file mode 0600; the public key as SubjectPublicKeyInfo PEM beside it (``KEY.pub``). A key's id
is the SHA-256 of its 32 raw public bytes, in hex.
"""

from __future__ import annotations

import hashlib
import stat
import sys
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from poisonguard.errors import InputError

__all__ = ["generate", "key_id", "load_private_key", "load_public_key", "public_bytes",
           "public_from_hex", "sign", "verify_signature"]


def public_bytes(key: Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of a public key."""
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(key: Ed25519PublicKey | Ed25519PrivateKey) -> str:
    """SHA-256 of the raw public key, hex."""
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return hashlib.sha256(public_bytes(pub)).hexdigest()


def public_from_hex(text: str) -> Ed25519PublicKey:
    """A public key from its 64 hex characters (as manifests and ledgers record it)."""
    try:
        return Ed25519PublicKey.from_public_bytes(bytes.fromhex(text))
    except ValueError as exc:
        raise InputError(f"not an ed25519 public key in hex: {text[:20]!r}... ({exc})") from None


def _write(path: Path, data: bytes, mode: int) -> None:
    """Atomic write with ``mode`` set before any byte lands (no window with loose permissions);
    the temporary file has a random name and is created with ``O_EXCL`` (``mkstemp``), so a
    symlink planted beside the key is never followed."""
    from poisonguard.io import atomic_path

    with atomic_path(path, mode=mode) as tmp:
        tmp.write_bytes(data)


def generate(path: str | Path, *, passphrase: str | None = None,
             overwrite: bool = False) -> tuple[Path, Path]:
    """Write a new private key to ``path`` (mode 0600) and its public key to ``path.pub``."""
    priv_path = Path(path)
    pub_path = priv_path.with_name(priv_path.name + ".pub")
    for p in (priv_path, pub_path):
        if p.exists() and not overwrite:
            raise InputError(f"{p}: already exists; refusing to overwrite a key")
    if not priv_path.parent.is_dir():
        raise InputError(f"{priv_path.parent}: no such directory")
    key = Ed25519PrivateKey.generate()
    enc: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase.encode()) if passphrase
        else serialization.NoEncryption())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)
    pub = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    _write(priv_path, pem, 0o600)
    _write(pub_path, pub, 0o644)
    return priv_path, pub_path


def _read(path: Path, what: str) -> bytes:
    from poisonguard.io import read_bytes

    return read_bytes(path, f"{what} file")


def load_private_key(path: str | Path, passphrase: str | None = None) -> Ed25519PrivateKey:
    """Read a private key written by :func:`generate`; warns on stderr when others can read it."""
    p = Path(path)
    data = _read(p, "private key")
    try:
        key = serialization.load_pem_private_key(
            data, password=passphrase.encode() if passphrase else None)
    except TypeError:
        if passphrase:
            raise InputError(f"{p}: the key is not encrypted; drop the passphrase") from None
        raise InputError(f"{p}: the key is encrypted; give its passphrase "
                         "(--passphrase-env VAR)") from None
    except ValueError:
        if b"PUBLIC KEY" in data:
            raise InputError(f"{p}: not a PEM private key (that is a public key)") from None
        if passphrase:
            raise InputError(f"{p}: wrong passphrase, or not a PEM private key") from None
        raise InputError(f"{p}: not a PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError(f"{p}: not an ed25519 key ({type(key).__name__})")
    mode = stat.S_IMODE(p.stat().st_mode)
    if mode & 0o077:
        print(f"warning: {p}: private key is readable by others (mode {mode:04o}); "
              f"run chmod 600 {p}", file=sys.stderr)
    return key


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    """Read a public key (PEM, as written to ``KEY.pub``)."""
    p = Path(path)
    data = _read(p, "public key")
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        hint = " (that is a private key: pass KEY.pub)" if b"PRIVATE KEY" in data else ""
        raise InputError(f"{p}: not a PEM public key{hint}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise InputError(f"{p}: not an ed25519 key ({type(key).__name__})")
    return key


def sign(key: Ed25519PrivateKey, message: bytes) -> bytes:
    """Ed25519 signature of ``message`` (64 bytes)."""
    return key.sign(message)


def verify_signature(key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    """True when ``signature`` is ``key``'s signature of ``message``."""
    try:
        key.verify(signature, message)
    except InvalidSignature:
        return False
    return True
