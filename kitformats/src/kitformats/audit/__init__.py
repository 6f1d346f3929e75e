"""The audit log's formats, shared by the kit that keeps the log and the laptop that checks it.

merkle      RFC 6962 / RFC 9162 Merkle tree hashes, inclusion and consistency proofs
note        C2SP signed notes with Ed25519 keys
checkpoint  C2SP tlog-checkpoints: origin, tree size and root hash, signed as a note
"""
