"""The strict form of the gateway's own signatures.

An OpenPGP signature has parts no signature covers: the ASCII armor (line breaks, the
CRC line), the packet's length encoding and the unhashed subpacket area, which carries
the issuer's key ID as a hint. gpg accepts a signature whose hint was changed, or whose
length byte was inflated, as still good; such a signature still proves the same thing,
but a bit flipped in a stored signature would go unnoticed. The gateway signs with gpg
and always gets one exact form, so for its own signatures (receipts, checkpoints, key
handovers) the verifier demands that form byte for byte: canonical armor with a correct
CRC, one version 4 signature packet with the shortest length encoding and nothing
after it, and an unhashed area that holds the issuer key ID and nothing else. The key
ID itself is compared with the key that made the signature once gpg has checked it, and
the packet's two quick-check digest bytes with the data (gpg skips that for EdDSA).

Departments' drop signatures come from whatever tool the department uses, so they are
checked by gpg only (see `gateway.intake.signed_drops`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from pathlib import Path

BEGIN = b"-----BEGIN PGP SIGNATURE-----"
END = b"-----END PGP SIGNATURE-----"
_CRC24_INIT = 0xB704CE
_CRC24_POLY = 0x1864CFB
_ISSUER = 16
_ISSUER_FINGERPRINT = 33
_BINARY_DOCUMENT = 0x00
_SHA256 = 8


class SignatureForm(ValueError):
    """The signature is not in the form the gateway makes."""


def crc24(data: bytes) -> int:
    """The OpenPGP armor checksum (RFC 4880 section 6.1)."""
    crc = _CRC24_INIT
    for byte in data:
        crc ^= byte << 16
        for _ in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= _CRC24_POLY
    return crc & 0xFFFFFF


def armor(packet: bytes, checksum: bool = True) -> bytes:
    """ASCII armor exactly as gpg writes a detached signature (RFC 9580 drops the CRC
    line; a gpg that follows it gives the same armor without that line)."""
    text = base64.b64encode(packet)
    lines = [text[i : i + 64] for i in range(0, len(text), 64)]
    if checksum:
        lines.append(b"=" + base64.b64encode(crc24(packet).to_bytes(3, "big")))
    return b"\n".join([BEGIN, b"", *lines, END]) + b"\n"


def dearmor(signature: bytes) -> bytes:
    """The signature packet inside canonical armor; anything else is refused."""
    lines = signature.split(b"\n")
    if len(lines) < 5 or lines[0] != BEGIN or lines[1] != b"" or lines[-1] != b"" or lines[-2] != END:
        raise SignatureForm("the armor is not the gateway's (header, blank line, body, checksum, footer)")
    checksum = lines[-3].startswith(b"=")
    try:
        packet = base64.b64decode(b"".join(lines[2:-3] if checksum else lines[2:-2]), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureForm(f"the armored body is not base64: {exc}") from exc
    if armor(packet, checksum) != signature:
        raise SignatureForm("the armor's checksum or line layout does not match its content")
    return packet


def _packet_body(packet: bytes) -> bytes:
    if not packet or not packet[0] & 0x80:
        raise SignatureForm("not an OpenPGP packet")
    ctb = packet[0]
    if ctb & 0x40:  # new format
        tag, first = ctb & 0x3F, packet[1:2]
        if not first:
            raise SignatureForm("truncated packet header")
        if first[0] < 192:
            length, header = first[0], 2
        elif first[0] < 224:
            if len(packet) < 3:
                raise SignatureForm("truncated packet header")
            length, header = ((first[0] - 192) << 8) + packet[2] + 192, 3
            if length < 192:
                raise SignatureForm("the packet length is not in its shortest form")
        elif first[0] == 255:
            length, header = int.from_bytes(packet[2:6], "big"), 6
            if length < 8384:
                raise SignatureForm("the packet length is not in its shortest form")
        else:
            raise SignatureForm("partial-length signature packets are not made by the gateway")
    else:  # old format
        tag, kind = (ctb >> 2) & 0x0F, ctb & 0x03
        if kind == 3:
            raise SignatureForm("indeterminate-length packets are not made by the gateway")
        size = 1 << kind
        header = 1 + size
        length = int.from_bytes(packet[1:header], "big")
        if size > 1 and length < 1 << (8 * (size // 2)):
            raise SignatureForm("the packet length is not in its shortest form")
    if tag != 2:
        raise SignatureForm(f"packet tag {tag} is not a signature")
    if len(packet) != header + length:
        raise SignatureForm("the packet length does not match its content (one packet, nothing after it)")
    return packet[header:]


def _subpackets(area: bytes) -> list[tuple[int, bytes]]:
    found, i = [], 0
    while i < len(area):
        first = area[i]
        if first < 192:
            length, i = first, i + 1
        elif first < 255:
            if i + 1 >= len(area):
                raise SignatureForm("truncated subpacket")
            length, i = ((first - 192) << 8) + area[i + 1] + 192, i + 2
            if length < 192:
                raise SignatureForm("a subpacket length is not in its shortest form")
        else:
            length, i = int.from_bytes(area[i + 1 : i + 5], "big"), i + 5
            if length < 16320:
                raise SignatureForm("a subpacket length is not in its shortest form")
        if length == 0 or i + length > len(area):
            raise SignatureForm("a subpacket overruns its area")
        found.append((area[i], area[i + 1 : i + length]))  # the type byte with its critical bit
        i += length
    return found


@dataclass(frozen=True)
class StrictSignature:
    key_id: str
    """The unhashed issuer key ID, 16 upper-case hex digits."""
    hashed_part: bytes
    """Version to the end of the hashed subpackets: what the digest covers after the data."""
    left16: bytes

    def digest_matches(self, data: bytes | Path) -> bool:
        """Do the packet's two quick-check bytes match SHA-256 over `data`? (gpg skips
        this check for EdDSA, so the strict form makes it.)"""
        digest = hashlib.sha256()
        if isinstance(data, Path):
            with open(data, "rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
        else:
            digest.update(data)
        digest.update(self.hashed_part)
        digest.update(b"\x04\xff" + len(self.hashed_part).to_bytes(4, "big"))
        return digest.digest()[:2] == self.left16


def parse_strict(signature: bytes) -> StrictSignature:
    """Check the strict form of a detached signature over binary data, made with SHA-256."""
    body = _packet_body(dearmor(signature))
    if len(body) < 6 or body[0] != 4:
        raise SignatureForm("not a version 4 signature packet")
    if body[1] != _BINARY_DOCUMENT or body[3] != _SHA256:
        raise SignatureForm("not a SHA-256 signature over binary data")
    hashed_len = int.from_bytes(body[4:6], "big")
    at = 6 + hashed_len
    if at + 2 > len(body):
        raise SignatureForm("truncated signature packet")
    hashed = _subpackets(body[6:at])
    unhashed_len = int.from_bytes(body[at : at + 2], "big")
    unhashed = _subpackets(body[at + 2 : at + 2 + unhashed_len])
    hashed_part = body[:at]
    at += 2 + unhashed_len
    if len(unhashed) != 1 or unhashed[0][0] != _ISSUER or len(unhashed[0][1]) != 8:
        raise SignatureForm("the unhashed area must hold exactly the issuer key ID")
    key_id = unhashed[0][1].hex().upper()
    issuer_fprs = [value[1:].hex().upper() for kind, value in hashed if kind & 0x7F == _ISSUER_FINGERPRINT]
    if issuer_fprs and not issuer_fprs[0].endswith(key_id):
        raise SignatureForm("the unhashed issuer key ID does not match the signed issuer fingerprint")
    left16 = body[at : at + 2]
    at += 2
    if len(left16) != 2 or at >= len(body):
        raise SignatureForm("truncated signature value")
    while at < len(body):  # the algorithm's MPIs, each in its shortest form, nothing after them
        if at + 2 > len(body):
            raise SignatureForm("truncated signature value")
        bits = int.from_bytes(body[at : at + 2], "big")
        size = (bits + 7) // 8
        value = body[at + 2 : at + 2 + size]
        if not size or len(value) != size or value[0].bit_length() != bits - 8 * (size - 1):
            raise SignatureForm("a signature value is malformed")
        at += 2 + size
    return StrictSignature(key_id, hashed_part, left16)
