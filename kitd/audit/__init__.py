"""The audit log's pure core: RFC 6962 Merkle hashing, C2SP signed notes and checkpoints."""
