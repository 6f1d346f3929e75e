"""Crypto: keys, sealing (CMS) and the audit chain of the kit."""
