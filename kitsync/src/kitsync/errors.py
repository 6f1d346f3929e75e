"""What kit-sync reports to a person, each kind with its exit code.

Its one job: the exceptions a command raises to stop with one line on stderr, and the exit
code each stands for (0 ok, 1 a transfer or check failed, 2 usage, 3 not paired or revoked,
4 the kit's certificate does not match the pinned one, 5 a kit's audit log is inconsistent with
the checkpoint this laptop trusted — the one code no exception stands for: a sync goes on). They
derive from kitformats' KitError, the one root of every error the kit's software reports to a
person.
"""

from __future__ import annotations

import errno

from kitformats.errors import KitError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_NOT_PAIRED = 3
EXIT_KIT_CERTIFICATE = 4
# The kit's audit log was rewritten (found by this sync, or shown by status): above 1, since a
# failed transfer is retried next time and a rewritten history is not.
EXIT_AUDIT_INCONSISTENT = 5
# The laptop's own disk refusing a write: full, or over the user's quota.
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


class SyncError(KitError):
    """A command cannot go on; the message is the one line the technician reads."""

    exit_code = EXIT_FAILED


class TransferFailed(SyncError):
    """The kit cannot be reached, a transfer broke off, or a check of what came failed."""

    exit_code = EXIT_FAILED


class UsageProblem(SyncError):
    """The command line asks for something that cannot be (an unknown kit, a missing file)."""

    exit_code = EXIT_USAGE


class NotPaired(SyncError):
    """This laptop is not (or no longer) paired with the kit, or the kit refused to pair."""

    exit_code = EXIT_NOT_PAIRED


class KitCertificateChanged(SyncError):
    """The kit's TLS certificate is not the one pinned at pairing: maybe not the kit at all."""

    exit_code = EXIT_KIT_CERTIFICATE


class LaptopDiskFull(SyncError):
    """The laptop's own disk is full: not the network, and trying again at once would not help."""

    exit_code = EXIT_FAILED


class ConnectionLost(TransferFailed):
    """The network gave out on a transfer even after a few attempts: later ones would too."""
