"""RFC 6962 / RFC 9162 Merkle tree hashing over SHA-256.

The tree is the Certificate Transparency one:

* leaf hash:  ``SHA-256(0x00 || data)``
* node hash:  ``SHA-256(0x01 || left || right)``
* empty tree: ``SHA-256("")`` (the hash of the empty string, no prefix)

A tree over ``n > 1`` leaves splits at ``k``, the largest power of two
strictly below ``n``: the left subtree holds the first ``k`` leaves, the
right subtree the rest (RFC 6962 section 2.1).  The distinct prefixes keep a
leaf from ever hashing like an interior node (second-preimage resistance).

Proof generation follows RFC 6962 section 2.1.1 / 2.1.2; verification follows
the iterative algorithms of RFC 9162 sections 2.1.3.2 and 2.1.4.2, so proofs
interoperate with the transparency-dev/merkle reference implementation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "ProofError",
    "TreeBuilder",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_from_inclusion_proof",
    "root_from_leaf_hashes",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

# Bound once: TreeBuilder is the per-record hot path and attribute lookups add up
# over a million appends.
_sha256 = hashlib.sha256


class ProofError(ValueError):
    """An inclusion or consistency proof failed verification."""


def leaf_hash(data: bytes) -> bytes:
    """Return the RFC 6962 leaf hash ``SHA-256(0x00 || data)``."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 6962 interior node hash ``SHA-256(0x01 || left || right)``."""
    return _sha256(b"\x01" + left + right).digest()


class TreeBuilder:
    """Streaming Merkle tree root over appended leaves in O(log n) memory.

    Only the roots of the perfect subtrees that make up the current tree are
    kept: one per set bit of ``size``, largest (leftmost) first.
    """

    __slots__ = ("_size", "_stack")

    def __init__(self) -> None:
        self._size = 0
        self._stack: list[bytes] = []

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    def append(self, data: bytes) -> None:
        """Hash ``data`` as a leaf and append it."""
        self.append_leaf_hash(_sha256(b"\x00" + data).digest())

    def append_leaf_hash(self, h: bytes) -> None:
        """Append an already computed leaf hash."""
        if len(h) != HASH_SIZE:
            raise ValueError(f"leaf hash must be {HASH_SIZE} bytes, got {len(h)}")
        stack = self._stack
        # Each trailing 1 bit of the old size is a perfect subtree the size of
        # the one being carried, so they merge exactly like binary addition.
        n = self._size
        while n & 1:
            h = _sha256(b"\x01" + stack.pop() + h).digest()
            n >>= 1
        stack.append(h)
        self._size += 1

    def extend_leaf_hashes(self, hashes: Sequence[bytes]) -> None:
        """Append already computed leaf hashes, in order (the ingest writer's batch)."""
        if any(len(h) != HASH_SIZE for h in hashes):
            raise ValueError(f"leaf hashes must be {HASH_SIZE} bytes each")
        push, pop, size = self._stack.append, self._stack.pop, self._size
        for h in hashes:
            n = size
            while n & 1:
                h = _sha256(b"\x01" + pop() + h).digest()
                n >>= 1
            push(h)
            size += 1
        self._size = size

    def root(self) -> bytes:
        """Return the root of the tree so far; the builder stays usable."""
        stack = self._stack
        if not stack:
            return EMPTY_ROOT
        # The right spine of an RFC 6962 tree pairs each perfect subtree with
        # everything to its right, so fold from the smallest subtree leftwards.
        root = stack[-1]
        for i in range(len(stack) - 2, -1, -1):
            root = _sha256(b"\x01" + stack[i] + root).digest()
        return root


def _range_root(leaf_hashes: Sequence[bytes], start: int, end: int) -> bytes:
    builder = TreeBuilder()
    for i in range(start, end):
        builder.append_leaf_hash(leaf_hashes[i])
    return builder.root()


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """Return MTH(D[n]) (RFC 6962 section 2.1) for the given leaf hashes."""
    return _range_root(hashes, 0, len(hashes))


def _split(n: int) -> int:
    """Largest power of two strictly smaller than ``n`` (requires ``n > 1``)."""
    return 1 << ((n - 1).bit_length() - 1)


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """Return the audit path PATH(index, D[n]) of RFC 6962 section 2.1.1.

    Entries are ordered from the leaf's sibling up to the root's child.
    """
    n = len(leaf_hashes)
    if not 0 <= index < n:
        raise ValueError(f"leaf index {index} out of range for tree size {n}")
    # Walk from the root down to the leaf, collecting the sibling subtree
    # at each level; the RFC lists them bottom-up, hence the final reverse.
    path: list[bytes] = []
    start, end = 0, n
    while end - start > 1:
        mid = start + _split(end - start)
        if index < mid:
            path.append(_range_root(leaf_hashes, mid, end))
            end = mid
        else:
            path.append(_range_root(leaf_hashes, start, mid))
            start = mid
    path.reverse()
    return path


def consistency_proof(leaf_hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    """Return PROOF(old_size, D[n]) of RFC 6962 section 2.1.2.

    Requires ``0 < old_size <= n``; equal sizes give an empty proof.  A proof
    from the empty tree is refused as meaningless, matching RFC 9162 and
    ``verify_consistency``.
    """
    n = len(leaf_hashes)
    if not 0 < old_size <= n:
        raise ValueError(f"old size {old_size} out of range for tree size {n}")
    # Iterative SUBPROOF(m, D[start:end], b): the old tree always covers
    # [start, old_size) of the current subtree, so m == end - start exactly
    # when end == old_size.
    path: list[bytes] = []
    start, end = 0, n
    whole_old_root_known = True  # the RFC's flag b
    while end != old_size:
        mid = start + _split(end - start)
        if old_size <= mid:
            path.append(_range_root(leaf_hashes, mid, end))
            end = mid
        else:
            path.append(_range_root(leaf_hashes, start, mid))
            start = mid
            whole_old_root_known = False
    # A subtree of the old tree that is not the whole old tree is unknown to
    # the verifier, so its hash must be supplied.
    if not whole_old_root_known:
        path.append(_range_root(leaf_hashes, start, end))
    path.reverse()
    return path


def _require_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} must be {HASH_SIZE} bytes, got {len(value)}")


def root_from_inclusion_proof(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]
) -> bytes:
    """Return the root implied by an inclusion proof (RFC 9162 section 2.1.3.2).

    Raises ProofError when the proof cannot belong to a tree of ``size``
    leaves at ``index`` (bad index, wrong length, malformed hashes).
    """
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} out of range for tree size {size}")
    _require_hash(leaf_hash, "leaf hash")
    fn, sn = index, size - 1
    r = leaf_hash
    for i, p in enumerate(proof):
        _require_hash(p, f"proof entry {i}")
        if sn == 0:
            raise ProofError(f"inclusion proof too long: {len(proof)} entries")
        if fn & 1 or fn == sn:
            r = _sha256(b"\x01" + p + r).digest()
            # On the right border a node may have no right sibling; those
            # levels are absent from the proof, so skip them.
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            r = _sha256(b"\x01" + r + p).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"inclusion proof too short: {len(proof)} entries")
    return r


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the tree with ``root``.

    Raises ProofError on any failure.  ``size`` is authenticated only through
    ``root`` (trees whose audit paths have the same shape accept the same
    proof), so take both from the same signed tree head.
    """
    _require_hash(root, "root")
    if root_from_inclusion_proof(leaf_hash, index, size, proof) != root:
        raise ProofError("inclusion proof does not lead to the expected root")


def verify_consistency(
    old_size: int,
    new_size: int,
    old_root: bytes,
    new_root: bytes,
    proof: Sequence[bytes],
) -> None:
    """Check that the tree ``new_root`` extends the tree ``old_root``.

    Implements RFC 9162 section 2.1.4.2 with the reference implementation's
    edge cases; raises ProofError on any failure:

    * ``old_size > new_size`` is refused.
    * ``old_size == 0`` is refused, even with ``new_size == 0``: RFC 9162
      requires ``0 < first`` and every tree trivially extends the empty one,
      so such a "proof" proves nothing.
    * ``old_size == new_size`` needs an empty proof and identical roots.
      Nothing is hashed then, so the roots are only compared, not
      length-checked (as transparency-dev/merkle does).
    """
    if old_size > new_size:
        raise ProofError(f"old size {old_size} exceeds new size {new_size}")
    if old_size <= 0:
        raise ProofError("consistency proof from the empty tree is meaningless")
    if old_size == new_size:
        if proof:
            raise ProofError("equal tree sizes require an empty proof")
        if old_root != new_root:
            raise ProofError("equal tree sizes but the roots differ")
        return
    if not proof:
        raise ProofError("empty consistency proof for different tree sizes")
    _require_hash(old_root, "old root")
    _require_hash(new_root, "new root")
    for i, p in enumerate(proof):
        _require_hash(p, f"proof entry {i}")

    # When the old tree is a perfect subtree its root is a node of the new
    # tree, so the proof leaves it out and the verifier supplies it.
    path: Sequence[bytes] = proof
    if old_size & (old_size - 1) == 0:
        path = [old_root, *proof]
    fn, sn = old_size - 1, new_size - 1
    # Start at the level of the largest perfect subtree ending at old_size.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError(f"consistency proof too long: {len(proof)} entries")
        if fn & 1 or fn == sn:
            fr = _sha256(b"\x01" + c + fr).digest()
            sr = _sha256(b"\x01" + c + sr).digest()
            while fn and not fn & 1:
                fn >>= 1
                sn >>= 1
        else:
            # Right-hand siblings exist only in the new tree.
            sr = _sha256(b"\x01" + sr + c).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError(f"consistency proof too short: {len(proof)} entries")
    if fr != old_root:
        raise ProofError("consistency proof does not lead to the old root")
    if sr != new_root:
        raise ProofError("consistency proof does not lead to the new root")
