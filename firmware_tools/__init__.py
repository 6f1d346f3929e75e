"""Peripheral firmware images: inspect, verify, upload, roll back."""
