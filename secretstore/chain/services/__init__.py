"""The service contracts: clients ask the key servers through the chain, the nodes answer there.

`abi` (the four APIs as Parity's nodes call them), `requests` (what a request is, from a log or
a pending-request read), `owner` (who starts a session: the range-owner rule), `contracts`
(one adapter per API), `cursor` (the last block whose logs were handled, in the node's
database), `origin` (a contract-originated session's request, checked on the contract),
`handlers` (what the node does for each request), `listener` (per block: logs, retries,
answers).
"""
