"""Peripheral firmware images: inspect, verify, upload, test and roll back. Empty for now.

Issue 32 fills it: the tools a technician uses on the fingerprint reader's, the pad's and
the camera's firmware. A client of kitd's drivers, like kitctl; kitd never imports it.
"""
