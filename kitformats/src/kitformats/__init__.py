"""kitformats: the formats the kit and the field laptop share, and nothing else.

    errors             the root error type (KitError)
    signing            who signs (a certificate) and how (ECDSA P-256 over a digest)
    cms                CMS SignedData and AuthEnvelopedData, built and checked
    statements         signed statements: JSON, canonical (RFC 8785), with a detached CMS signature
    bundle_statements  the kit's signed statement of a sealed bundle
    receipts           a laptop's or the central office's receipt of a bundle
    work_orders        the work-order JSON Schema
    pairing            kitd-pairing/1: a laptop and a kit pair with a 6-digit code (SPAKE2)
    link_certificates  the self-signed certificates of the laptop link (the kit's TLS, a laptop's)
    audit              the audit log's formats: RFC 6962 Merkle trees and proofs, C2SP signed notes
                       (Ed25519) and tlog checkpoints (the kit signs, the laptop checks)
    named_files        files a person names, read to a limit (the kit's CLIs, kitfw's image checks)

It depends on cryptography, asn1crypto, rfc8785 and spake2 only: a field laptop installs it
without the kit's device libraries.
"""
