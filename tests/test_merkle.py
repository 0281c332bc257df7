"""Tests for gateway.receipts.merkle (RFC 6962 / RFC 9162 Merkle trees).

Known answers come from the transparency-dev/merkle test suite
(proof/verify_test.go), which uses the RFC 6962 / CT example leaves. The
published JSON vectors are committed under tests/data/vectors/transparency-dev-merkle/
(Apache-2.0, its LICENSE beside them), so a plain clone runs them.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from gateway.receipts.merkle import (
    EMPTY_ROOT,
    ProofError,
    TreeBuilder,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_inclusion_proof,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

# --------------------------------------------------------------------------
# Known answers (transparency-dev/merkle proof/verify_test.go)
# --------------------------------------------------------------------------

# Backend-independent (pure Merkle-tree arithmetic): runs on one backend only (tests/conftest.py).
pytestmark = pytest.mark.backend_independent


RFC6962_LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]

# Root of the tree over the first i+1 leaves above.
RFC6962_ROOTS = [
    bytes.fromhex(h)
    for h in (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]

# (0-based leaf index, tree size, audit path)
RFC6962_INCLUSION_PROOFS = [
    (
        0,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        [
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        3,
        ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    ),
    (
        1,
        5,
        [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
]

# (old size, new size, consistency proof)
RFC6962_CONSISTENCY_PROOFS = [
    (1, 1, []),
    (
        1,
        8,
        [
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        [
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
    (
        6,
        7,
        [
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
]

RFC6962_LEAF_HASHES = [leaf_hash(d) for d in RFC6962_LEAVES]


def test_empty_tree_root() -> None:
    assert EMPTY_ROOT.hex() == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert TreeBuilder().root() == EMPTY_ROOT
    assert root_from_leaf_hashes([]) == EMPTY_ROOT


def test_domain_separation() -> None:
    assert leaf_hash(b"").hex() == RFC6962_ROOTS[0].hex()
    assert node_hash(RFC6962_LEAF_HASHES[0], RFC6962_LEAF_HASHES[1]) == RFC6962_ROOTS[1]


@pytest.mark.parametrize("size", range(1, 9))
def test_rfc6962_roots(size: int) -> None:
    assert root_from_leaf_hashes(RFC6962_LEAF_HASHES[:size]) == RFC6962_ROOTS[size - 1]


def test_rfc6962_roots_streaming() -> None:
    builder = TreeBuilder()
    for size, data in enumerate(RFC6962_LEAVES, start=1):
        builder.append(data)
        assert builder.size == size
        # root() must not consume state: ask twice.
        assert builder.root() == RFC6962_ROOTS[size - 1]
        assert builder.root() == RFC6962_ROOTS[size - 1]
    assert builder.root().hex() == (
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    )


@pytest.mark.parametrize(("index", "size", "proof_hex"), RFC6962_INCLUSION_PROOFS)
def test_rfc6962_inclusion_proofs(index: int, size: int, proof_hex: list[str]) -> None:
    proof = [bytes.fromhex(h) for h in proof_hex]
    assert inclusion_proof(RFC6962_LEAF_HASHES[:size], index) == proof
    verify_inclusion(
        RFC6962_LEAF_HASHES[index], index, size, proof, RFC6962_ROOTS[size - 1]
    )


@pytest.mark.parametrize(("old", "new", "proof_hex"), RFC6962_CONSISTENCY_PROOFS)
def test_rfc6962_consistency_proofs(old: int, new: int, proof_hex: list[str]) -> None:
    proof = [bytes.fromhex(h) for h in proof_hex]
    assert consistency_proof(RFC6962_LEAF_HASHES[:new], old) == proof
    verify_consistency(old, new, RFC6962_ROOTS[old - 1], RFC6962_ROOTS[new - 1], proof)


# --------------------------------------------------------------------------
# Published transparency-dev/merkle JSON vectors, committed with the tests
# --------------------------------------------------------------------------


VECTOR_DIR = Path(__file__).resolve().parent / "data" / "vectors" / "transparency-dev-merkle" / "testdata"
VECTORS_MISSING = f"Merkle test vectors not found at {VECTOR_DIR} (they are committed with the tests)"


def _vector_params(kind: str) -> list[Any]:
    folder = VECTOR_DIR / kind
    files = sorted(folder.rglob("*.json")) if folder.is_dir() else []
    if not files:
        # A missing corpus must fail loudly, never shrink to zero tests.
        return [pytest.param(None, id=f"{kind}-vectors-missing")]
    return [pytest.param(f, id=f.relative_to(VECTOR_DIR).as_posix()) for f in files]


def _load_vector(path: Path | None) -> dict[str, Any]:
    if path is None:
        pytest.fail(VECTORS_MISSING)
    with path.open(encoding="utf-8") as fh:
        vector: dict[str, Any] = json.load(fh)
    return vector


def _b64(value: str) -> bytes:
    return base64.b64decode(value, validate=True)


def _b64_list(values: list[str] | None) -> list[bytes]:
    # The Go generator serialises a nil proof as JSON null.
    return [_b64(v) for v in values or []]


@pytest.mark.parametrize("path", _vector_params("inclusion"))
def test_inclusion_vector(path: Path | None) -> None:
    v = _load_vector(path)
    args = (
        _b64(v["leafHash"]),
        v["leafIdx"],
        v["treeSize"],
        _b64_list(v["proof"]),
        _b64(v["root"]),
    )
    if v["wantErr"]:
        with pytest.raises(ProofError):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


@pytest.mark.parametrize("path", _vector_params("consistency"))
def test_consistency_vector(path: Path | None) -> None:
    v = _load_vector(path)
    args = (
        v["size1"],
        v["size2"],
        _b64(v["root1"]),
        _b64(v["root2"]),
        _b64_list(v["proof"]),
    )
    if v["wantErr"]:
        with pytest.raises(ProofError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)


def test_vector_corpus_is_complete() -> None:
    if not VECTOR_DIR.is_dir():
        pytest.fail(VECTORS_MISSING)
    # Guards against a truncated copy silently passing with fewer cases.
    for kind in ("inclusion", "consistency"):
        for case in range(5):
            happy = VECTOR_DIR / kind / str(case) / "happy-path.json"
            assert happy.is_file(), f"missing vector {happy}"
    assert (VECTOR_DIR / "consistency" / "additional").is_dir()
    assert (VECTOR_DIR / "inclusion" / "single-entry").is_dir()


# --------------------------------------------------------------------------
# Properties checked against the tree itself
# --------------------------------------------------------------------------


def _reference_mth(hashes: Sequence[bytes]) -> bytes:
    """MTH straight from the recursive definition in RFC 6962 section 2.1."""
    n = len(hashes)
    if n == 0:
        return EMPTY_ROOT
    if n == 1:
        return hashes[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(_reference_mth(hashes[:k]), _reference_mth(hashes[k:]))


def _leaf_hashes(n: int) -> list[bytes]:
    return [leaf_hash(i.to_bytes(4, "big")) for i in range(n)]


def _flipped_variants(proof: list[bytes]) -> list[list[bytes]]:
    variants = []
    for i, entry in enumerate(proof):
        for j in range(len(entry)):
            bad = bytearray(entry)
            bad[j] ^= 0x01
            variants.append([*proof[:i], bytes(bad), *proof[i + 1 :]])
    return variants


LEAVES_64 = _leaf_hashes(64)


@pytest.fixture(scope="module")
def roots_64() -> list[bytes]:
    """roots_64[n] is the root over the first n leaves, from TreeBuilder."""
    builder = TreeBuilder()
    roots = [builder.root()]
    for h in LEAVES_64:
        builder.append_leaf_hash(h)
        roots.append(builder.root())
    return roots


def test_streaming_matches_recursive_definition(roots_64: list[bytes]) -> None:
    for n in range(65):
        assert roots_64[n] == _reference_mth(LEAVES_64[:n])
        assert root_from_leaf_hashes(LEAVES_64[:n]) == roots_64[n]


@pytest.mark.parametrize("size", range(1, 65))
def test_inclusion_properties(size: int, roots_64: list[bytes]) -> None:
    leaves = LEAVES_64[:size]
    root = roots_64[size]
    assert root == root_from_leaf_hashes(leaves)
    for index in range(size):
        proof = inclusion_proof(leaves, index)
        verify_inclusion(leaves[index], index, size, proof, root)
        assert root_from_inclusion_proof(leaves[index], index, size, proof) == root

        for bad in _flipped_variants(proof):
            with pytest.raises(ProofError):
                verify_inclusion(leaves[index], index, size, bad, root)
        for other in range(size + 2):
            if other != index:
                with pytest.raises(ProofError):
                    verify_inclusion(leaves[index], other, size, proof, root)
        # The size is bound to the tree only through its root, so a wrong size
        # must fail against that size's genuine root ...
        for other_size in range(1, len(roots_64)):
            if other_size != size:
                with pytest.raises(ProofError):
                    verify_inclusion(
                        leaves[index], index, other_size, proof, roots_64[other_size]
                    )
        # ... and against the claimed root whenever the tree height changes.
        for other_size in (size * 2, size // 2):
            with pytest.raises(ProofError):
                verify_inclusion(leaves[index], index, other_size, proof, root)
        with pytest.raises(ProofError):
            verify_inclusion(leaves[index], index, size, [*proof, root], root)
        if proof:
            with pytest.raises(ProofError):
                verify_inclusion(leaves[index], index, size, proof[:-1], root)


@pytest.mark.parametrize("new", range(1, 41))
def test_consistency_properties(new: int, roots_64: list[bytes]) -> None:
    leaves = LEAVES_64[:new]
    new_root = roots_64[new]
    for old in range(1, new + 1):
        old_root = roots_64[old]
        proof = consistency_proof(leaves, old)
        verify_consistency(old, new, old_root, new_root, proof)
        if old == new:
            assert proof == []
            continue

        for bad in _flipped_variants(proof):
            with pytest.raises(ProofError):
                verify_consistency(old, new, old_root, new_root, bad)
        for other_old in range(0, new + 1):
            if other_old != old:
                with pytest.raises(ProofError):
                    verify_consistency(other_old, new, old_root, new_root, proof)
        for other_new in range(0, len(roots_64)):
            if other_new != new:
                with pytest.raises(ProofError):
                    verify_consistency(
                        old, other_new, old_root, roots_64[other_new], proof
                    )
        for other_new in (new * 2, new // 2):
            with pytest.raises(ProofError):
                verify_consistency(old, other_new, old_root, new_root, proof)
        with pytest.raises(ProofError):
            verify_consistency(old, new, new_root, old_root, proof)
        with pytest.raises(ProofError):
            verify_consistency(old, new, old_root, new_root, [*proof, old_root])
        with pytest.raises(ProofError):
            verify_consistency(old, new, old_root, new_root, proof[:-1])


def test_size_is_bound_only_through_the_root() -> None:
    # RFC 9162 verification cannot tell trees apart whose audit paths have the
    # same shape: leaf 0 of a 3-leaf tree has the same path shape as in a
    # 4-leaf tree. Callers must therefore take size and root from the same
    # signed tree head; this pins that behaviour so it is not "fixed" into an
    # incompatibility with RFC 9162 verifiers.
    leaves = RFC6962_LEAF_HASHES[:3]
    proof = inclusion_proof(leaves, 0)
    verify_inclusion(leaves[0], 0, 3, proof, RFC6962_ROOTS[2])
    verify_inclusion(leaves[0], 0, 4, proof, RFC6962_ROOTS[2])
    with pytest.raises(ProofError):
        verify_inclusion(leaves[0], 0, 4, proof, RFC6962_ROOTS[3])


def test_consistency_edge_cases() -> None:
    root = RFC6962_ROOTS[0]
    verify_consistency(1, 1, root, root, [])
    with pytest.raises(ProofError):
        verify_consistency(1, 1, root, RFC6962_ROOTS[1], [])
    with pytest.raises(ProofError):
        verify_consistency(1, 1, root, root, [root])
    with pytest.raises(ProofError):
        verify_consistency(2, 1, RFC6962_ROOTS[1], root, [])
    # RFC 9162 requires 0 < old size: the empty tree proves nothing.
    for new in (0, 1, 8):
        with pytest.raises(ProofError):
            verify_consistency(0, new, EMPTY_ROOT, RFC6962_ROOTS[new - 1], [])


def test_generator_argument_checks() -> None:
    with pytest.raises(ValueError, match="out of range"):
        inclusion_proof(RFC6962_LEAF_HASHES, 8)
    with pytest.raises(ValueError, match="out of range"):
        inclusion_proof(RFC6962_LEAF_HASHES, -1)
    with pytest.raises(ValueError, match="out of range"):
        consistency_proof(RFC6962_LEAF_HASHES, 0)
    with pytest.raises(ValueError, match="out of range"):
        consistency_proof(RFC6962_LEAF_HASHES, 9)
    with pytest.raises(ValueError, match="32 bytes"):
        TreeBuilder().append_leaf_hash(b"short")


def test_verify_rejects_malformed_hashes() -> None:
    leaves = RFC6962_LEAF_HASHES
    proof = inclusion_proof(leaves, 3)
    root = RFC6962_ROOTS[7]
    verify_inclusion(leaves[3], 3, 8, proof, root)
    with pytest.raises(ProofError):
        verify_inclusion(leaves[3][:31], 3, 8, proof, root)
    with pytest.raises(ProofError):
        verify_inclusion(leaves[3], 3, 8, [proof[0] + b"\x00", *proof[1:]], root)
    with pytest.raises(ProofError):
        verify_inclusion(leaves[3], 3, 8, proof, root[:16])
    with pytest.raises(ProofError):
        verify_inclusion(leaves[3], -1, 8, proof, root)
