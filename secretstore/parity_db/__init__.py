"""Parity Secret Store's key database: its layout, its records, and importing them.

`layout` recognises a Parity data directory (the node refuses to start on one); `record`
decodes one JSON record into a KeyShare; `checks` says what can be checked of a share, alone
and across nodes; `rocks` reads the RocksDB (rocksdict, an optional dependency); `publics`
is the share-publics file nodes exchange for the cross-node check; `importer` runs an import.
"""
