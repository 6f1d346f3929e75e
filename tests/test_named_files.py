"""Files a technician names that hold no end (/dev/zero, a FIFO fed for ever): read to a
limit and refused in one line with a non-zero exit, never read until the memory is full."""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import threading
from pathlib import Path

import pytest
from kitformats.named_files import MAX_NAMED_FILE, MiB, read_named_file
from kitformats.signing import KeyProblem, read_certificate
from kitsync.errors import UsageProblem
from kitsync.orders import read_orders_file

from hil.rig import venv_script
from kitd.drivers.camera_sources import SequenceSource
from kitd.errors import DeviceGone


def test_a_file_is_read_whole_up_to_its_limit_and_refused_past_it(tmp_path: Path) -> None:
    ten = tmp_path / "ten"
    ten.write_bytes(b"a" * 10)
    assert read_named_file(ten, 10) == b"a" * 10
    with pytest.raises(OSError) as refused:
        read_named_file(ten, 9)
    assert refused.value.errno == errno.EFBIG
    assert refused.value.strerror == "more than 9 bytes: not a file of this kind"
    with pytest.raises(OSError, match="more than 1 MiB: not a file of this kind"):
        read_named_file("/dev/zero", MiB)
    with pytest.raises(FileNotFoundError):
        read_named_file(tmp_path / "none")


def test_a_fifo_fed_for_ever_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    def feed() -> None:
        with contextlib.suppress(BrokenPipeError), open(fifo, "wb") as pipe:
            while True:
                pipe.write(b"\0" * 65536)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    with pytest.raises(OSError, match="more than 2 MiB"):
        read_named_file(fifo, 2 * MiB)
    feeder.join(10)
    assert not feeder.is_alive()


def test_kit_sync_refuses_an_endless_orders_file_in_one_line() -> None:
    with pytest.raises(UsageProblem, match=r"^/dev/zero: more than the kit's 10 MB limit: split it$"):
        read_orders_file(Path("/dev/zero"))


BEYOND = f"more than {MAX_NAMED_FILE // MiB} MiB: not a file of this kind"


@pytest.mark.parametrize(
    ("command", "status", "line"),
    [
        (("kitd", "--config", "/dev/zero"), 2, "config file /dev/zero cannot be read: more than 1 MiB"),
        (
            ("kitctl", "devices", "--config", "/dev/zero"),
            2,
            "config file /dev/zero cannot be read: more than 1",
        ),
        (("kitctl", "quality", "iris", "/dev/zero"), 1, f"/dev/zero: cannot read: {BEYOND}"),
        (
            ("kitctl", "orders", "import", "/dev/zero"),
            1,
            "kitctl orders import: refused: /dev/zero: more than the kit's 10 MB limit: split it",
        ),
        (("kitfw", "info", "/dev/zero"), 2, BEYOND),
    ],
)
def test_an_endless_file_on_the_command_line_is_one_line(
    command: tuple[str, ...], status: int, line: str
) -> None:
    result = subprocess.run(
        [venv_script(command[0]), *command[1:]], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == status, (result.returncode, result.stderr)
    # One line on stderr; kitctl quality iris says each input's fate on stdout, its sum on stderr.
    said = (result.stdout + result.stderr).splitlines()
    assert any(line in each for each in said), said
    assert len(result.stderr.splitlines()) == 1, result.stderr


def test_a_certificate_and_a_camera_s_image_sequence_without_end_are_refused(tmp_path: Path) -> None:
    """A certificate named with --kit-cert, and a camera:file: pattern whose images are
    /dev/zero: each its own one-line refusal, not the whole memory read."""
    with pytest.raises(KeyProblem, match=f"^/dev/zero: cannot read: {BEYOND}$"):
        read_certificate(Path("/dev/zero"))
    for index in (0, 1):
        (tmp_path / f"eye_{index}.png").symlink_to("/dev/zero")
    source = SequenceSource(str(tmp_path / "eye_%d.png"), loop=False, fps=10.0)
    source.open()
    with pytest.raises(DeviceGone, match=f"cannot read .*eye_0.png: {BEYOND}$"):
        source.read()
