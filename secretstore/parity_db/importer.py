"""Import one node's Parity Secret Store keys into its LevelDB key storage.

Two passes over the records, so that nothing is written unless everything was checked:

1. Check: decode every record (record.py), check this node's share (checks.py), optionally
   against other nodes' records (their Parity directories, or their share-publics files), and
   compare it with the target: absent → to import; present and the same record → counted as
   present; present and different → refused (never overwritten).
2. Write: only when nothing was refused (or `skip_refused`) and not a dry run, insert the new
   records through LevelDbKeyStorage (each write synced). A second run finds them present.

An interrupted write pass leaves some records written; running the import again completes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from secretstore.errors import (
    CorruptRecord,
    ParityImportError,
    ParityRecordError,
    ServerKeyAlreadyGenerated,
)
from secretstore.parity_db.checks import ShareSummary, cross_check, own_share_problem, short
from secretstore.parity_db.layout import find_parity_data, locate_source
from secretstore.parity_db.publics import decode_share_publics, encode_share_publics
from secretstore.parity_db.record import decode_key_id, decode_parity_record, same_record
from secretstore.parity_db.rocks import ParityRecords
from secretstore.storage.leveldb import LevelDbKeyStorage
from secretstore.storage.model import KeyShare
from secretstore.types import NodeId, ServerKeyId


@dataclass(frozen=True, slots=True)
class PeerDatabase:
    """Another node's Parity data directory, and that node's id."""

    node: NodeId
    path: Path


@dataclass(frozen=True, slots=True)
class ImportRequest:
    source: Path
    target: Path
    node: NodeId
    peer_databases: Sequence[PeerDatabase] = ()
    peer_publics: Sequence[Path] = ()
    export_publics: Path | None = None
    dry_run: bool = False
    skip_refused: bool = False


@dataclass(frozen=True, slots=True)
class Refusal:
    key: bytes
    reason: str

    def __str__(self) -> str:
        return f"key 0x{self.key.hex()}: {self.reason}"


@dataclass
class ImportReport:
    """What an import found and did. `written` says whether the write pass ran."""

    source: Path
    target: Path
    db_version: int
    records: int = 0
    imported: list[ServerKeyId] = field(default_factory=list)
    present: list[ServerKeyId] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    #: with other nodes given: keys whose newest version was checked across nodes, and not
    cross_checked: int = 0
    cross_unchecked: int = 0
    peers: int = 0
    warnings: list[str] = field(default_factory=list)
    written: bool = False
    to_import: list[ServerKeyId] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.refused


def _check_target(target: Path) -> bool:
    """Whether `target` holds a LevelDB already (read in the check pass); ParityImportError
    when it is something that must not be written into."""
    found = find_parity_data(target)
    if found is not None:
        raise ParityImportError(
            f"the target {target} holds a Parity database ({found.evidence}): give a new "
            "directory for the node's LevelDB key storage"
        )
    if not target.exists():
        return False
    if not target.is_dir():
        raise ParityImportError(f"the target {target} is not a directory")
    if (target / "CURRENT").is_file():
        return True
    if any(target.iterdir()):
        raise ParityImportError(
            f"the target {target} is a directory that holds files but no LevelDB database"
        )
    return False


class _Peers:
    """The other nodes' records of each key, from their databases and share-publics files."""

    def __init__(self, request: ImportRequest, stack: ExitStack, report: ImportReport) -> None:
        self._report = report
        self._databases: list[tuple[NodeId, ParityRecords]] = []
        self._files: list[dict[ServerKeyId, ShareSummary]] = []
        nodes: set[NodeId] = set()
        for peer in request.peer_databases:
            if peer.node == request.node or peer.node in nodes:
                raise ParityImportError(f"node {short(peer.node)} is given twice")
            nodes.add(peer.node)
            records = ParityRecords(locate_source(peer.path), request.target.parent)
            self._databases.append((peer.node, stack.enter_context(records)))
        for path in request.peer_publics:
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ParityImportError(f"cannot read {path}: {exc}") from None
            node, summaries = decode_share_publics(text, str(path))
            if node == request.node or node in nodes:
                raise ParityImportError(f"node {short(node)} is given twice ({path})")
            nodes.add(node)
            self._files.append(summaries)
        report.peers = len(nodes)

    def __bool__(self) -> bool:
        return bool(self._databases or self._files)

    def summaries(self, key_id: ServerKeyId) -> list[ShareSummary]:
        out: list[ShareSummary] = []
        for node, records in self._databases:
            raw = records.get(key_id)
            if raw is None:
                continue
            try:
                share = decode_parity_record(raw)
            except ParityRecordError as exc:
                self._report.warnings.append(
                    f"key 0x{key_id.hex()}: node {short(node)}'s record is refused ({exc}); "
                    "its share was not used"
                )
                continue
            problem = own_share_problem(share, node)
            if problem is not None:
                self._report.warnings.append(
                    f"key 0x{key_id.hex()}: node {short(node)}'s record: {problem}; its share "
                    "was not used"
                )
                continue
            out.append(ShareSummary.of(node, share))
        for summaries in self._files:
            summary = summaries.get(key_id)
            if summary is not None:
                out.append(summary)
        return out


def _checked_share(
    key: bytes, value: bytes, node: NodeId, peers: _Peers, report: ImportReport
) -> tuple[ServerKeyId, KeyShare]:
    """The key id and share of one record, through every check; ParityRecordError if not."""
    key_id = decode_key_id(key)
    share = decode_parity_record(value)
    problem = own_share_problem(share, node)
    if problem is not None:
        raise ParityRecordError(problem)
    if peers:
        result = cross_check(node, share, peers.summaries(key_id))
        report.warnings.extend(f"key 0x{key_id.hex()}: {text}" for text in result.warnings)
        if result.problem is not None:
            raise ParityRecordError(result.problem)
        if share.last_version().hash in result.checked:
            report.cross_checked += 1
        else:
            report.cross_unchecked += 1
    return key_id, share


def _existing(storage: LevelDbKeyStorage | None, key_id: ServerKeyId) -> KeyShare | None:
    if storage is None:
        return None
    try:
        return storage.get(key_id)
    except CorruptRecord as exc:
        raise ParityRecordError(
            f"the record already stored at the target does not decode ({exc}); it is left as it is"
        ) from None


_DIFFERENT = (
    "a different record of this key is stored at the target already; it is left as it is "
    "(the node may have changed the key since an earlier import)"
)


def _check_pass(
    request: ImportRequest,
    records: ParityRecords,
    peers: _Peers,
    storage: LevelDbKeyStorage | None,
    report: ImportReport,
) -> list[tuple[ServerKeyId, ShareSummary]]:
    exported: list[tuple[ServerKeyId, ShareSummary]] = []
    for key, value in records.items():
        report.records += 1
        try:
            key_id, share = _checked_share(key, value, request.node, peers, report)
            if request.export_publics is not None:
                exported.append((key_id, ShareSummary.of(request.node, share)))
            existing = _existing(storage, key_id)
            if existing is None:
                report.to_import.append(key_id)
            elif same_record(existing, share):
                report.present.append(key_id)
            else:
                raise ParityRecordError(_DIFFERENT)
        except ParityRecordError as exc:
            report.refused.append(Refusal(bytes(key), str(exc)))
    return exported


def _write_pass(records: ParityRecords, storage: LevelDbKeyStorage, report: ImportReport) -> None:
    wanted = set(report.to_import)
    for key, value in records.items():
        if key not in wanted:
            continue
        key_id = decode_key_id(key)
        share = decode_parity_record(value)
        try:
            storage.insert(key_id, share)
        except ServerKeyAlreadyGenerated:
            existing = storage.get(key_id)
            if existing is not None and same_record(existing, share):
                report.present.append(key_id)
            else:
                report.refused.append(Refusal(key_id, _DIFFERENT))
            continue
        report.imported.append(key_id)


def _open_target(target: Path) -> LevelDbKeyStorage:
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    return LevelDbKeyStorage(target)


def run_import(request: ImportRequest) -> ImportReport:
    """Import `request.source` into `request.target` as `request.node`'s keys.

    ParityImportError when the import cannot run at all (no Parity database, an unsupported
    version, rocksdict missing, Parity still running, a target that is not ours to write); the
    StorageError of the target's LevelDB; otherwise the report, whose `refused` lists every
    record left out with its reason.
    """
    source = locate_source(request.source)
    target = Path(request.target)
    target_exists = _check_target(target)
    with ExitStack() as stack:
        records = stack.enter_context(ParityRecords(source, target.parent))
        report = ImportReport(source.data_dir, target, records.version)
        peers = _Peers(request, stack, report)
        storage = stack.enter_context(LevelDbKeyStorage(target)) if target_exists else None
        exported = _check_pass(request, records, peers, storage, report)
        if request.export_publics is not None:
            _write_text(request.export_publics, encode_share_publics(request.node, exported))
        may_write = not report.refused or request.skip_refused
        if may_write and report.to_import and not request.dry_run:
            if storage is None:
                storage = stack.enter_context(_open_target(target))
            report.written = True
            _write_pass(records, storage, report)
    return report


def _write_text(path: Path, text: str) -> None:
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ParityImportError(f"cannot write {path}: {exc}") from None
