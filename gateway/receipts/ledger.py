"""The receipt ledger as an RFC 6962 tree, its signed checkpoints, its verification and
its export for a security officer.

Every receipt is a leaf of the ledger tree: leaf data = the receipt body bytes, leaf
index = sequence - 1. A checkpoint is the gateway's signed statement "the ledger had
`tree_size` receipts and root `root` at `time`" (canonical JSON, detached signature),
stored in the `checkpoint` table and written under HOME/ledger/checkpoints/. A kept
checkpoint and a later one are tied by a consistency proof: the later ledger holds the
earlier one unchanged, so nothing was removed, changed or re-ordered in between.

Verification reads a `LedgerView`, the same whether it comes from the database or from
an export folder, so `gateway ledger verify` works alike on the gateway and on an
officer's machine that has only the export.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from sqlalchemy import Engine, func, select, text
from sqlmodel import Session, col

from contracts import canonical_json

from gateway.errors import GatewayError
from gateway.store import session_scope
from gateway.store.models import Checkpoint, Receipt
from gateway.receipts.check import Check, check_signed_document
from gateway.receipts.documents import CheckpointDocument, ConsistencyDocument, ExportManifest
from gateway.receipts.keys import HANDOVERS, check_history
from gateway.receipts.merkle import (
    EMPTY_ROOT,
    ProofError,
    TreeBuilder,
    leaf_hash,
    node_hash,
    verify_consistency,
)
from gateway.receipts.receipt import GENESIS, RECEIPT_TYPE
from gateway.receipts.signing import HISTORY_FILE, Signer, read_history
from gateway.receipts.verify import Verifier

log = logging.getLogger("gateway")

CHECKPOINT_TYPE = "gateway.ledger-checkpoint"
CONSISTENCY_TYPE = "gateway.consistency-proof"
EXPORT_TYPE = "gateway.ledger-export"
MANIFEST = "manifest.json"
SHOWN_FAILURES = 5


class LedgerProblem(GatewayError):
    """The ledger cannot be checkpointed, exported or read as asked."""


@dataclass
class Signed:
    """A signed document: its exact bytes and its detached signature."""

    name: str
    body: bytes
    signature: bytes

    @classmethod
    def from_file(cls, path: Path) -> Signed:
        signature = path.with_name(path.name + ".asc")
        try:
            return cls(path.name.removesuffix(".json"), path.read_bytes(), signature.read_bytes())
        except OSError as exc:
            raise LedgerProblem(f"cannot read {exc.filename}: {exc.strerror} (the signature lies beside as NAME.json.asc)") from exc


def checkpoint_name(checkpoint_id: int) -> str:
    return f"checkpoint-{checkpoint_id:06d}"


def receipt_name(sequence: int) -> str:
    return f"R{sequence:08d}"


def checkpoint_fields(document: Mapping[str, object]) -> tuple[int, bytes]:
    """The signed tree size and root of a checkpoint document (ValueError if malformed)."""
    size, root = document.get("tree_size"), document.get("root")
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise ValueError(f"tree_size {size!r} is not a positive whole number")
    if not isinstance(root, str) or len(root) != 64 or root != root.lower():
        raise ValueError("root is not 64 lower-case hex digits")
    return size, bytes.fromhex(root)


# -- the tree over the ledger ----------------------------------------------------------


def _split(n: int) -> int:
    return 1 << ((n - 1).bit_length() - 1)


class LedgerTree:
    """Leaf hashes of the whole ledger with memoized perfect subtrees, so that many
    consistency proofs (one per pair of checkpoints) cost O(n + proofs * log^2 n)
    rather than O(n) each. Gives the same proofs as `merkle.consistency_proof`."""

    def __init__(self, leaf_hashes: Sequence[bytes]):
        self.leaves = leaf_hashes
        self._perfect: dict[tuple[int, int], bytes] = {}

    def root(self, start: int, end: int) -> bytes:
        n = end - start
        if n == 0:
            return EMPTY_ROOT
        if n == 1:
            return self.leaves[start]
        perfect = n & (n - 1) == 0
        if perfect and (start, n) in self._perfect:
            return self._perfect[(start, n)]
        k = _split(n)
        value = node_hash(self.root(start, start + k), self.root(start + k, end))
        if perfect:
            self._perfect[(start, n)] = value
        return value

    def consistency(self, old_size: int, new_size: int) -> list[bytes]:
        """PROOF(old_size, D[new_size]) of RFC 6962 section 2.1.2."""
        if not 0 < old_size <= new_size <= len(self.leaves):
            raise ValueError(f"no consistency proof from {old_size} to {new_size} over {len(self.leaves)} leaves")
        path: list[bytes] = []
        start, end, whole = 0, new_size, True
        while end != old_size:
            mid = start + _split(end - start)
            if old_size <= mid:
                path.append(self.root(mid, end))
                end = mid
            else:
                path.append(self.root(start, mid))
                start, whole = mid, False
        if not whole:
            path.append(self.root(start, end))
        path.reverse()
        return path

    def inclusion(self, index: int, size: int) -> list[bytes]:
        """PATH(index, D[size]) of RFC 6962 section 2.1.1."""
        if not 0 <= index < size <= len(self.leaves):
            raise ValueError(f"leaf {index} is not in a tree of {size}")
        path: list[bytes] = []
        start, end = 0, size
        while end - start > 1:
            mid = start + _split(end - start)
            if index < mid:
                path.append(self.root(mid, end))
                end = mid
            else:
                path.append(self.root(start, mid))
                start = mid
        path.reverse()
        return path


def _resume(size: int, frontier: list[str]) -> TreeBuilder:
    """A TreeBuilder continued from a stored frontier (its perfect subtrees' roots).
    The caller checks the resumed root against the signed one."""
    if len(frontier) != bin(size).count("1"):
        raise ValueError("the frontier does not fit the tree size")
    builder = TreeBuilder()
    builder._size = size  # noqa: SLF001 - TreeBuilder's state is exactly (size, frontier)
    builder._stack = [bytes.fromhex(h) for h in frontier]  # noqa: SLF001
    return builder


def _frontier(builder: TreeBuilder) -> list[str]:
    return [h.hex() for h in builder._stack]  # noqa: SLF001


# -- checkpoints in the store ----------------------------------------------------------


def checkpoints_dir(home: Path) -> Path:
    return home / "ledger" / "checkpoints"


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    partial.write_bytes(data)
    os.replace(partial, path)


def write_signed(folder: Path, name: str, body: bytes, signature: bytes) -> Path:
    """NAME.json and NAME.json.asc; the signature first, so a body never lies unsigned."""
    path = folder / f"{name}.json"
    _write_atomic(path.with_name(path.name + ".asc"), signature)
    _write_atomic(path, body)
    return path


CHECKPOINT_LOCK = 0x6757_636B  # "gWck": advisory lock id held while a checkpoint is signed


def make_checkpoint(engine: Engine, signer: Signer, folder: Path) -> Checkpoint:
    """Sign a checkpoint of the whole ledger as it is now and write its files."""
    with session_scope(engine) as session:
        if session.get_bind().dialect.name == "postgresql":
            # Workers checkpoint at once: without this lock one could read the ledger, another
            # commit a bigger checkpoint, and the first then store a smaller one after it (seen:
            # "checkpoint-000003 is smaller or older than the checkpoint before it"). Under the
            # lock each reads the latest checkpoint and receipts only after the one before
            # committed, so sizes and times never go back. SQLite's BEGIN IMMEDIATE serializes.
            session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHECKPOINT_LOCK})
        last = session.exec(
            select(Checkpoint).order_by(col(Checkpoint.tree_size).desc(), col(Checkpoint.id).desc()).limit(1)  # type: ignore[call-overload]
        ).scalars().first()
        builder = TreeBuilder()
        if last is not None:
            try:
                resumed = _resume(last.tree_size, json.loads(last.frontier))
                if resumed.root().hex() == last.root:
                    builder = resumed
                else:
                    log.warning("checkpoint %s: stored frontier disagrees with its root; rereading the ledger", last.id)
            except ValueError:
                log.warning("checkpoint %s: stored frontier unreadable; rereading the ledger", last.id)
        rows = session.execute(
            select(col(Receipt.sequence), col(Receipt.body))
            .where(col(Receipt.sequence) > builder.size)
            .order_by(col(Receipt.sequence))
            .execution_options(yield_per=1000)
        )
        for sequence, body in rows:
            if sequence != builder.size + 1:
                raise LedgerProblem(f"the ledger has a gap before receipt {sequence}; run `gateway ledger verify`")
            builder.append(body.encode("utf-8"))
        if builder.size == 0:
            raise LedgerProblem("the ledger is empty: there is nothing to checkpoint until the first receipt")
        fingerprint = signer.fingerprint
        document: CheckpointDocument = {
            "type": CHECKPOINT_TYPE,
            "version": "1",
            "tree_size": builder.size,
            "root": builder.root().hex(),
            "time": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
            "signing_key": fingerprint,
        }
        body = canonical_json(document)
        checkpoint = Checkpoint(
            tree_size=builder.size,
            root=document["root"],
            body=body.decode("utf-8"),
            signature=signer.sign(body, fingerprint),
            key_fingerprint=fingerprint,
            frontier=json.dumps(_frontier(builder)),
        )
        session.add(checkpoint)
        session.flush()
        session.expunge(checkpoint)
    assert checkpoint.id is not None
    write_signed(folder, checkpoint_name(checkpoint.id), checkpoint.body.encode("utf-8"), checkpoint.signature.encode("ascii"))
    log.info("ledger checkpoint %s: %d receipts, root %s", checkpoint.id, checkpoint.tree_size, checkpoint.root)
    return checkpoint


def checkpoint_if_grown(engine: Engine, signer: Signer, folder: Path) -> Checkpoint | None:
    """A new checkpoint when receipts were added since the last one (two small queries otherwise)."""
    with Session(engine) as session:
        receipts = session.execute(select(func.max(Receipt.sequence))).scalar() or 0
        covered = session.execute(select(func.max(Checkpoint.tree_size))).scalar() or 0
    if receipts <= covered:
        return None
    return make_checkpoint(engine, signer, folder)


def checkpoint_after_pass(engine: Engine, signer: Signer, home: Path) -> None:
    """The end of a pass that added receipts. A failure is logged, never fatal: the
    receipts are safe, and the next pass (or `gateway ledger checkpoint`) covers them."""
    try:
        checkpoint_if_grown(engine, signer, checkpoints_dir(home))
    except Exception:  # noqa: BLE001 - the pass itself succeeded
        log.exception("ledger checkpoint failed; the next pass tries again (or run `gateway ledger checkpoint`)")


# -- reading a ledger ------------------------------------------------------------------


@dataclass
class LedgerView:
    """What verification reads: receipts in sequence order, checkpoints in creation
    order, and (from an export) the consistency proofs between them."""

    receipts: list[Signed]
    checkpoints: list[Signed]
    proofs: list[tuple[str, object]] = field(default_factory=list)
    """(file name, its JSON: a `ConsistencyDocument` unless the file is broken)."""
    stored: list[tuple[int, str, str]] | None = None
    """From the database only: (sequence, sha256, previous_sha256) columns."""


def load_store(engine: Engine) -> LedgerView:
    with Session(engine) as session:
        rows = session.execute(
            select(
                col(Receipt.sequence), col(Receipt.body), col(Receipt.signature), col(Receipt.sha256), col(Receipt.previous_sha256)
            ).order_by(col(Receipt.sequence))
        ).all()
        checkpoints = session.exec(select(Checkpoint).order_by(col(Checkpoint.id))).scalars().all()  # type: ignore[call-overload]
        return LedgerView(
            receipts=[Signed(receipt_name(r[0]), r[1].encode("utf-8"), r[2].encode("ascii")) for r in rows],
            checkpoints=[Signed(checkpoint_name(c.id or 0), c.body.encode("utf-8"), c.signature.encode("ascii")) for c in checkpoints],
            stored=[(r[0], r[3], r[4]) for r in rows],
        )


def load_export(directory: Path) -> LedgerView:
    if not (directory / MANIFEST).exists():
        raise LedgerProblem(f"{directory} is not a ledger export (no {MANIFEST}); make one with `gateway ledger export DIR`")
    receipts = [Signed.from_file(p) for p in sorted((directory / "receipts").glob("R*.json"))]
    checkpoints = [Signed.from_file(p) for p in sorted((directory / "checkpoints").glob("checkpoint-*.json"))]
    proofs: list[tuple[str, object]] = []
    for path in sorted((directory / "proofs").glob("consistency-*.json")):
        try:
            proofs.append((path.name, json.loads(path.read_bytes())))
        except ValueError as exc:
            proofs.append((path.name, {"unreadable": str(exc)}))
    return LedgerView(receipts, checkpoints, proofs)


def read_checkpoint_arg(value: str, *, view_dir: Path | None = None, engine: Engine | None = None) -> Signed:
    """`--since`: a checkpoint file (its .asc beside), or a checkpoint number."""
    path = Path(value)
    if path.exists():
        return Signed.from_file(path)
    if value.isdigit():
        number = int(value)
        if view_dir is not None:
            return Signed.from_file(view_dir / "checkpoints" / f"{checkpoint_name(number)}.json")
        if engine is not None:
            with Session(engine) as session:
                row = session.get(Checkpoint, number)
            if row is not None:
                return Signed(checkpoint_name(number), row.body.encode("utf-8"), row.signature.encode("ascii"))
    raise LedgerProblem(f"no checkpoint {value!r}: give a checkpoint file (NAME.json, with NAME.json.asc beside) or its number")


# -- verification ----------------------------------------------------------------------


@dataclass
class LedgerReport:
    checks: list[Check] = field(default_factory=list)
    receipts: int = 0
    latest: tuple[str, int, str] | None = None
    """The latest checkpoint: name, tree size, root."""

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)


def _summed(name: str, failures: list[str], good: str) -> Check:
    if not failures:
        return Check(name, True, good)
    shown = "; ".join(failures[:SHOWN_FAILURES])
    more = f" (and {len(failures) - SHOWN_FAILURES} more)" if len(failures) > SHOWN_FAILURES else ""
    return Check(name, False, shown + more)


def _problems(checks: list[Check]) -> str:
    return "; ".join(f"{c.name}: {c.detail}" for c in checks if not c.ok)


def check_checkpoint(item: Signed, verifier: Verifier) -> tuple[list[Check], int | None, bytes | None]:
    """A checkpoint's signature and form; its tree size and root when they hold."""
    checks, document, _ = check_signed_document(item.body, item.signature, verifier, CHECKPOINT_TYPE)
    if document is None or not all(c.ok for c in checks):
        return checks, None, None
    try:
        size, root = checkpoint_fields(document)
    except ValueError as exc:
        checks.append(Check("fields", False, str(exc)))
        return checks, None, None
    return checks, size, root


def verify_ledger(view: LedgerView, keys_dir: Path, since: Signed | None = None) -> LedgerReport:
    """Every check an officer needs, on receipts and checkpoints alike:

    * each receipt: one good signature by a key of the history valid at the time,
      canonical bytes, sequence = its place, previous_receipt_sha256 = the receipt before;
    * each checkpoint: signed likewise, its root = the root over the first tree_size
      receipts, sizes never shrinking; each exported consistency proof holds between
      the signed checkpoints it names;
    * `since` (a checkpoint the officer kept): signed, and the latest checkpoint extends
      it (RFC 6962 consistency proof);
    * the key history: handovers signed by both keys.
    """
    report = LedgerReport(receipts=len(view.receipts))
    history = read_history(keys_dir)
    with Verifier(history, keys_dir) as verifier:
        problems = check_history(keys_dir, verifier)
        report.checks.append(
            _summed("key history", problems, f"{len(history)} key(s); every change of key handed over with both keys' signatures")
        )

        # Receipts: signatures, order, chain; leaf hashes for the tree.
        signature_failures, order_failures, chain_failures = [], [], []
        leaves: list[bytes] = []
        previous = GENESIS
        for position, item in enumerate(view.receipts, 1):
            checks, document, _ = check_signed_document(item.body, item.signature, verifier, RECEIPT_TYPE)
            if not all(c.ok for c in checks):
                signature_failures.append(f"{item.name}: {_problems(checks)}")
            if document is not None:
                part = document.get("ledger")
                ledger: Mapping[str, object] = part if isinstance(part, dict) else {}
                sequence = ledger.get("sequence")
                if sequence != position or document.get("receipt_id") != receipt_name(position) or item.name != receipt_name(position):
                    order_failures.append(
                        f"{item.name} holds receipt {sequence} at place {position} (a receipt is missing, added or out of order)"
                    )
                if ledger.get("previous_receipt_sha256") != previous:
                    chain_failures.append(f"{item.name} does not link to the receipt before it")
            previous = hashlib.sha256(item.body).hexdigest()
            leaves.append(leaf_hash(item.body))
        count = len(view.receipts)
        report.checks.append(
            _summed("receipts", signature_failures, f"{count} receipts, each signed by a key valid at its time, canonical")
        )
        report.checks.append(_summed("sequence", order_failures, f"receipts 1 to {count}, none missing, none out of order"))
        report.checks.append(_summed("chain", chain_failures, "every receipt names the sha256 of the one before it"))
        if view.stored is not None:
            column_failures = []
            for (sequence, sha, previous_sha), item in zip(view.stored, view.receipts):
                actual = hashlib.sha256(item.body).hexdigest()
                if sha != actual:
                    column_failures.append(f"receipt {sequence}: stored sha256 is not the body's")
            for (sequence, _, previous_sha), (_, earlier, _) in zip(view.stored[1:], view.stored):
                if previous_sha != earlier:
                    column_failures.append(f"receipt {sequence}: stored previous_sha256 does not match receipt {sequence - 1}")
            report.checks.append(_summed("stored columns", column_failures, "sha256 and previous_sha256 columns agree"))

        # Checkpoints: signed, roots over the receipts, never shrinking.
        tree = LedgerTree(leaves)
        checkpoint_failures: list[str] = []
        signed: dict[str, tuple[int, bytes]] = {}
        last_size, last_time = 0, ""
        for item in view.checkpoints:
            checks, size, root = check_checkpoint(item, verifier)
            if size is None or root is None:
                checkpoint_failures.append(f"{item.name}: {_problems(checks)}")
                continue
            document = json.loads(item.body)
            if size > count:
                checkpoint_failures.append(f"{item.name} covers {size} receipts but only {count} are here: receipts were removed")
            elif tree.root(0, size) != root:
                checkpoint_failures.append(f"{item.name}: the first {size} receipts no longer give its root: a receipt was changed, removed or re-ordered")
            if size < last_size or str(document.get("time")) < last_time:
                checkpoint_failures.append(f"{item.name} is smaller or older than the checkpoint before it: the ledger shrank")
            last_size, last_time = max(last_size, size), max(last_time, str(document.get("time")))
            signed[item.name] = (size, root)
            report.latest = (item.name, size, root.hex())
        if not view.checkpoints:
            report.checks.append(Check("checkpoints", count == 0, "no checkpoint yet (run `gateway ledger checkpoint`)"))
        else:
            report.checks.append(
                _summed("checkpoints", checkpoint_failures, f"{len(view.checkpoints)} checkpoints, each signed and matching the receipts")
            )
        if report.latest is not None and report.latest[1] < count:
            report.checks.append(
                Check("coverage", True, f"{count - report.latest[1]} receipt(s) after the latest checkpoint, checked by signature and chain")
            )

        # Exported consistency proofs between consecutive checkpoints.
        if view.proofs:
            proof_failures = []
            for name, proof in view.proofs:
                try:
                    consistency = cast(ConsistencyDocument, proof)  # as read: a broken file fails below
                    old, new = signed[consistency["old"]["checkpoint"]], signed[consistency["new"]["checkpoint"]]
                    verify_consistency(old[0], new[0], old[1], new[1], [bytes.fromhex(h) for h in consistency["proof"]])
                except (KeyError, TypeError, ValueError) as exc:
                    proof_failures.append(f"{name}: unreadable or names an unverified checkpoint ({exc})")
                except ProofError as exc:
                    proof_failures.append(f"{name}: {exc}")
            report.checks.append(
                _summed("consistency proofs", proof_failures, f"{len(view.proofs)} proofs: each checkpoint extends the one before")
            )

        if since is not None:
            report.checks.append(_check_since(since, verifier, tree, report.latest, count))
    return report


def _check_since(since: Signed, verifier: Verifier, tree: LedgerTree, latest: tuple[str, int, str] | None, count: int) -> Check:
    checks, size, root = check_checkpoint(since, verifier)
    if size is None or root is None:
        return Check("since checkpoint", False, f"your checkpoint {since.name} is not genuine: {_problems(checks)}")
    if latest is None:
        return Check("since checkpoint", False, "the ledger has no checkpoint to compare yours with")
    name, latest_size, latest_root = latest
    if size > latest_size:
        return Check("since checkpoint", False, f"your checkpoint covers {size} receipts, the latest ({name}) only {latest_size}: the ledger shrank")
    try:
        proof = tree.consistency(size, latest_size) if latest_size <= count else []
        verify_consistency(size, latest_size, root, bytes.fromhex(latest_root), proof)
    except (ProofError, ValueError) as exc:
        return Check(
            "since checkpoint", False,
            f"the ledger does not extend your checkpoint ({exc}): receipts were removed, changed or re-ordered since",
        )
    return Check(
        "since checkpoint", True,
        f"your checkpoint ({size} receipts) is a prefix of {name} ({latest_size}): the ledger only grew "
        f"(consistency proof of {len(proof)} hashes)",
    )


# -- export ----------------------------------------------------------------------------


VERIFY_MD = """\
# Verifying this ledger export

Made by `gateway ledger export` on {exported_at}: {receipts} receipts, {checkpoints} checkpoints,
latest checkpoint `{latest}` ({latest_size} receipts, root `{latest_root}`).

| folder | holds |
|---|---|
| `keys/` | the gateway's public keys, `history.json` (which key was valid when) and `handovers/` (each change of key, signed by both keys) |
| `receipts/` | every receipt `RNNNNNNNN.json` (exactly the signed bytes) with its detached signature `.json.asc` |
| `checkpoints/` | every signed ledger checkpoint (tree size, root, time, key) with its signature |
| `proofs/` | RFC 6962 consistency proofs between consecutive checkpoints |

First compare the fingerprints in `keys/history.json` with the ones the gateway published
(`gpg --show-keys keys/gateway-*.asc`). Trust nothing else in this folder by itself.

## With GnuPG only

```sh
export GNUPGHOME="$(mktemp -d)"          # an empty keyring: nothing else is trusted
gpg --import keys/gateway-*.asc
gpg --verify receipts/R00000001.json.asc receipts/R00000001.json
gpg --verify checkpoints/{latest}.json.asc checkpoints/{latest}.json
```

`gpg` must say "Good signature" by a key of `keys/history.json`, and the signature's date must lie inside that
key's window (`valid_from` to `valid_until`); a signature dated after its key's window is not genuine.
Each receipt's `ledger.previous_receipt_sha256` is the `sha256sum` of the receipt before it.

## With the gateway command (no database needed)

```sh
gateway ledger verify --export .                              # every receipt, checkpoint and proof
gateway ledger verify --export . --since /your/kept/checkpoint-NNNNNN.json
gateway receipts verify --keys keys receipts/R00000001.json   # one receipt
gateway receipts verify-proof RECORD.proof.json --keys keys    # one record (proof from `gateway receipts prove`)
```

`--since` takes a checkpoint you kept from an earlier export (with its `.asc` beside it) and proves the ledger
only grew since: no receipt removed, changed or re-ordered. Keep `checkpoints/{latest}.json` and its `.asc` for
next time. Use `--keys DIR` to point at your own copy of the published keys instead of `keys/` here.
"""


def export_ledger(engine: Engine, signer: Signer, home: Path, keys_dir: Path, target: Path) -> ExportManifest:
    """Write everything an officer needs to verify the ledger offline into `target`."""
    if target.exists() and any(target.iterdir()) and not (target / MANIFEST).exists():
        raise LedgerProblem(f"{target} is not empty and not an earlier export; choose a new folder")
    checkpoint_if_grown(engine, signer, checkpoints_dir(home))
    target.mkdir(parents=True, exist_ok=True)

    # Keys: the history, the public keys it names, the handovers. Not departments' keys.
    keys_out = target / "keys"
    history = read_history(keys_dir)
    keys_out.mkdir(exist_ok=True)
    shutil.copyfile(keys_dir / HISTORY_FILE, keys_out / HISTORY_FILE)
    for entry in history:
        shutil.copyfile(keys_dir / entry.public_key_file, keys_out / entry.public_key_file)
    if (keys_dir / HANDOVERS).is_dir():
        shutil.copytree(keys_dir / HANDOVERS, keys_out / HANDOVERS, dirs_exist_ok=True)

    leaves: list[bytes] = []
    with Session(engine) as session:
        rows = session.execute(
            select(col(Receipt.sequence), col(Receipt.body), col(Receipt.signature))
            .order_by(col(Receipt.sequence))
            .execution_options(yield_per=1000)
        )
        for sequence, body, signature in rows:
            data = body.encode("utf-8")
            write_signed(target / "receipts", receipt_name(sequence), data, signature.encode("ascii"))
            leaves.append(leaf_hash(data))
        checkpoints = session.exec(select(Checkpoint).order_by(col(Checkpoint.id))).scalars().all()  # type: ignore[call-overload]
    for row in checkpoints:
        write_signed(target / "checkpoints", checkpoint_name(row.id or 0), row.body.encode("utf-8"), row.signature.encode("ascii"))
    tree = LedgerTree(leaves)
    for old, new in zip(checkpoints, checkpoints[1:]):
        if not 0 < old.tree_size <= new.tree_size <= len(leaves):
            raise LedgerProblem(
                f"checkpoints {old.id} and {new.id} do not fit the ledger; run `gateway ledger verify` to see why"
            )
        proof: ConsistencyDocument = {
            "type": CONSISTENCY_TYPE,
            "old": {"checkpoint": checkpoint_name(old.id or 0), "tree_size": old.tree_size, "root": old.root},
            "new": {"checkpoint": checkpoint_name(new.id or 0), "tree_size": new.tree_size, "root": new.root},
            "proof": [h.hex() for h in tree.consistency(old.tree_size, new.tree_size)],
        }
        name = f"consistency-{old.id:06d}-{new.id:06d}.json"
        _write_atomic(target / "proofs" / name, (json.dumps(proof, indent=2) + "\n").encode("utf-8"))
    latest = checkpoints[-1] if checkpoints else None
    exported_at = dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat()
    manifest: ExportManifest = {
        "type": EXPORT_TYPE,
        "exported_at": exported_at,
        "receipts": len(leaves),
        "checkpoints": len(checkpoints),
        "latest_checkpoint": checkpoint_name(latest.id or 0) if latest else None,
        "keys": [entry.fingerprint for entry in history],
    }
    _write_atomic(target / MANIFEST, (json.dumps(manifest, indent=2) + "\n").encode("utf-8"))
    text = VERIFY_MD.format(
        exported_at=exported_at,
        receipts=len(leaves),
        checkpoints=len(checkpoints),
        latest=checkpoint_name(latest.id or 0) if latest else "(none)",
        latest_size=latest.tree_size if latest else 0,
        latest_root=latest.root if latest else "",
    )
    _write_atomic(target / "VERIFY.md", text.encode("utf-8"))
    return manifest


def iter_leaf_hashes(engine: Engine, limit: int | None = None) -> Iterator[bytes]:
    """Leaf hashes of the first `limit` receipts (all when None), in sequence order."""
    query = select(col(Receipt.body)).order_by(col(Receipt.sequence))
    if limit is not None:
        query = query.limit(limit)
    with Session(engine) as session:
        for body in session.execute(query.execution_options(yield_per=1000)).scalars():
            yield leaf_hash(body.encode("utf-8"))
