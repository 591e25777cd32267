"""Pure cryptography: curve math, Parity ECIES and document encryption, threshold schemes."""
