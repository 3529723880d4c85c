"""Provenance and integrity: row hashes, manifests, signatures, the Merkle ledger, diffs by
source and contributor reputation."""
