"""Capture: quality assessment and live capture sessions, per modality."""
