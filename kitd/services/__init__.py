"""The kit's services: what the daemon does with its devices, between the capture layer and
the API.

Device slots (keep a device connected, one job at a time), claims (so kitctl does not fight
kitd for a device), each modality's gate as configured, the capture endpoint's work per
device kind, each iris camera's feed and preview, and the live capture sessions. May import
kitd.config, kitd.capture, kitd.drivers and the bottom modules (errors, events, logs,
grey_image); never kitd.kit, kitd.api, kitd.cli, kitd.daemon, aiohttp or hil.
"""
