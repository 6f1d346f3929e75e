"""The peripheral controller's firmware images: read, verify, upload, test and roll back (kitfw).

mcuboot_image (the MCUboot image format) and image_checks (hash, signature, version,
allow-list) are pure: they import nothing of the kit, so the daemon, the simulator and a
technician's laptop judge an image alike. cli is kitfw; remote reaches the daemon's API.
"""
