"""The audit log: every node's signed, hash-chained record of the releases it took part in.

Pure parts (no I/O): `model` (facts, entries and their strict binary encoding), `receipts`
(a node's signed receipt of a release, the receipts a requester gets, their check), `chain`
(verifying a node's log), `jsonform` (the JSON of receipts and entries). I/O: `store` (the
log in the node's LevelDB, and in memory), `recorder` (the driver's side: time, signature,
synced append), `snapshot` (reading the log of a running node from a private copy).
docs/AUDIT.md describes the format and what is recorded.
"""
