"""kit-sync: the field laptop's link to e-KTP recording kits.

    cli               the kit-sync command line and its exit codes
    errors            the errors a command stops with, each with its exit code
    places            the data directory, one directory per kit, kit.json
    laptop_keys       the laptop's TLS and receipt keys for a kit
    link              HTTPS to a kit: TLS 1.3, client certificate, the kit's certificate pinned
    pair              kit-sync pair: kitd-pairing/1, the laptop's side
    orders            kit-sync push-orders
    download          one bundle into a .part file, resumed with HTTP Range
    pull              kit-sync pull: download, check, store, then acknowledge; outcomes
    central_receipts  kit-sync push-receipts
    ledger            which bundles the laptop holds and the kit knows it holds
    status            kit-sync status
    durable_files     files written whole, fsynced
    progress          rich progress bars on a terminal

It depends on kitformats, cryptography, spake2 and rich, and on Python's own http.client,
ssl and sqlite3: nothing of the kit's daemon or its device libraries. (Nothing is defined
here: run from the repository's root, ``kitsync`` can resolve to the distribution's folder
as a namespace package, and this file is then never read.)
"""
