"""AES-CBC with PKCS#7 padding, as Feishu / Lark and WeCom encrypt their events: the one place the `cryptography`
package is used, and its errors translated, for channels.

Both platforms encrypt with a key derived from a secret the app owner copies from the platform's page, and sign
the encrypted text: a payload that will not decrypt is either signed with the right secret and encrypted with
the wrong key (a setting to fix: 400) or not the platform's at all (401). The callers know which; here every
failure is `ChannelRequestInvalid`, with a message that says what did not fit.
"""

from __future__ import annotations

import base64
import binascii

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from rag.channels.base import ChannelRequestInvalid

_AES_BLOCK = 16


def b64decode(text: str | bytes, what: str) -> bytes:
    """Strict base64 (no stray characters); ChannelRequestInvalid naming `what` when it is not.

    >>> b64decode("aGk=", "echostr")
    b'hi'
    """
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ChannelRequestInvalid(f"{what} is not base64: {exc}") from None


def pkcs7_unpad(data: bytes, block: int = _AES_BLOCK) -> bytes:
    """`data` without its PKCS#7 padding to `block` bytes (WeCom pads to 32, not to AES's 16).

    >>> pkcs7_unpad(b"hello" + bytes([3]) * 3, 8)
    b'hello'
    """
    pad = data[-1] if data else 0
    if not 1 <= pad <= block or len(data) < pad or data[-pad:] != bytes([pad]) * pad:
        raise ChannelRequestInvalid("the decrypted payload has no valid PKCS#7 padding - is the key the platform's?")
    return data[:-pad]


def aes_cbc_decrypt(key: bytes, iv: bytes, data: bytes, *, block: int = _AES_BLOCK) -> bytes:
    """AES-CBC decryption of `data` (key of 16, 24 or 32 bytes) with PKCS#7 padding to `block` bytes removed."""
    if not data or len(data) % _AES_BLOCK:
        raise ChannelRequestInvalid(f"encrypted payload of {len(data)} bytes is not whole AES blocks")
    try:
        decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
        plain = decryptor.update(data) + decryptor.finalize()
    except ValueError as exc:  # a key or IV of the wrong length
        raise ChannelRequestInvalid(f"cannot decrypt the payload: {exc}") from None
    return pkcs7_unpad(plain, block)
