"""Capture: quality assessment and capture, per modality — the gate loop, the capture session,
the assessors, the preview pictures.

Takes values (a SessionPolicy, thresholds, a resolution, an open driver), never the kit's
configuration or state. May import kitd.drivers and the bottom modules (errors, grey_image),
numpy and OpenCV; never aiohttp, kitd.config, kitd.services, kitd.kit, kitd.api, kitd.daemon
or hil.
"""
