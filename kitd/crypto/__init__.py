"""Crypto: keys, sealing and the audit chain of the kit. Empty for now.

What will fill it: issue 22 (sealed bundles: ANSI/NIST-ITL inside CMS, signed by kit and
officer, enveloped for the central office), issue 23 (keys behind one interface: a 0600
file for development, PKCS#11 in the field) and issue 25 (the audit log's signed
checkpoints). It will sit beside kitd.services (sealing is a service of the kit) and may
import kitd.config and below, never kitd.api or kitd.daemon.
"""
