"""Signed notes and checkpoints of the audit log: Go sumdb's vectors, refusals and strict parsing."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kitformats.audit.checkpoint import (
    Checkpoint,
    MalformedCheckpoint,
    format_checkpoint,
    open_checkpoint,
    parse_checkpoint,
    sign_checkpoint,
)
from kitformats.audit.merkle import leaf_hash, tree_hash
from kitformats.audit.note import (
    MalformedKey,
    MalformedNote,
    NoteRefused,
    Signature,
    SignerKey,
    VerifierKey,
    format_signer_key,
    format_verifier_key,
    generate_signer_key,
    is_valid_key_name,
    key_id,
    open_note,
    parse_note,
    parse_signer_key,
    parse_verifier_key,
    sign_note,
)

VECTORS = Path(__file__).parent / "data" / "audit_vectors"
NOTE = json.loads((VECTORS / "sumdb_note.json").read_text())
TLOG = json.loads((VECTORS / "sumdb_tlog.json").read_text())

TEXT = NOTE["text"]
PETER_SIGNER = parse_signer_key(NOTE["peter"]["signer_key"])
PETER = parse_verifier_key(NOTE["peter"]["verifier_key"])
ENOCH = parse_verifier_key(NOTE["enoch"]["verifier_key"])
ENOCH_SIGNER = SignerKey("EnochRoot", bytes.fromhex(NOTE["enoch"]["seed_hex"]))


def one_line(error: pytest.ExceptionInfo[BaseException]) -> str:
    message = str(error.value)
    assert message and "\n" not in message
    return message


# --- Keys.


def test_peter_neumann_keys() -> None:
    assert PETER_SIGNER.name == PETER.name == "PeterNeumann"
    assert PETER_SIGNER.key_id == PETER.key_id == int(NOTE["peter"]["key_id"], 16)
    assert PETER_SIGNER.verifier == PETER
    assert str(PETER) == NOTE["peter"]["verifier_key"]
    assert format_signer_key(PETER_SIGNER.name, PETER_SIGNER.seed) == NOTE["peter"]["signer_key"]
    assert format_verifier_key(PETER.name, PETER.public_key) == NOTE["peter"]["verifier_key"]
    assert key_id(PETER.name, PETER.public_key) == 0xC74F20A3
    # The private seed stays out of reprs, and so out of logs.
    assert PETER_SIGNER.seed.hex() not in repr(PETER_SIGNER)


def test_enoch_root_key_is_the_zero_seed_of_the_example() -> None:
    assert ENOCH_SIGNER.verifier == ENOCH
    assert ENOCH.key_id == int(NOTE["enoch"]["key_id"], 16)
    assert str(ENOCH_SIGNER.verifier) == NOTE["enoch"]["verifier_key"]


def test_go_bad_verifier_keys_are_refused() -> None:
    for vector in NOTE["bad_verifier_keys"]:
        with pytest.raises(MalformedKey) as caught:
            parse_verifier_key(vector["key"])
        one_line(caught)
    # "BADKEY==" ends in bits that canonical base64 leaves zero: refused before its length is.
    with pytest.raises(MalformedKey, match="not canonical base64"):
        parse_verifier_key(NOTE["bad_verifier_keys"][0]["key"])
    wrong_length = VerifierKey("PeterNeumann", PETER.public_key + b"BADKEY")
    with pytest.raises(MalformedKey, match="an Ed25519 key is 32 bytes, not 38"):
        parse_verifier_key(f"PeterNeumann+{wrong_length.key_id:08x}+" + str(PETER).split("+")[2] + "QkFES0VZ")
    with pytest.raises(MalformedKey, match="unknown algorithm 0x65"):
        parse_verifier_key(NOTE["bad_verifier_keys"][1]["key"])


@pytest.mark.parametrize("which", ["verifier", "signer"])
def test_every_mangling_of_a_key_string_is_refused(which: str) -> None:
    # As Go's TestNewVerifier and TestNewSigner: every proper substring, every byte bumped.
    key = NOTE["peter"]["verifier_key" if which == "verifier" else "signer_key"]
    parse = parse_verifier_key if which == "verifier" else parse_signer_key
    manglings = {key[i:j] for i in range(len(key) + 1) for j in range(i + 1, len(key) + 1)} - {key}
    manglings |= {key[:i] + chr(ord(key[i]) + 1) + key[i + 1 :] for i in range(len(key))}
    for mangled in manglings:
        with pytest.raises(MalformedKey) as caught:
            parse(mangled)
        message = one_line(caught)
        assert NOTE["peter"]["signer_key"].rsplit("+", 1)[1] not in message


def test_key_names() -> None:
    assert is_valid_key_name("kit.example/KIT-0042")
    for bad in ["", "a+b", "a b", "a\tb", "a\u00a0b", "a\u2003b", "a\x01b", "a\ud800b"]:
        assert not is_valid_key_name(bad), bad
    with pytest.raises(MalformedKey, match="cannot name a key"):
        format_verifier_key("a b", PETER.public_key)
    with pytest.raises(MalformedKey, match="32 bytes, not 31"):
        format_signer_key("kit", bytes(31))


def test_generated_signer_keys_round_trip() -> None:
    text = generate_signer_key("kit.example/audit")
    signer = parse_signer_key(text)
    assert format_signer_key(signer.name, signer.seed) == text
    assert parse_verifier_key(str(signer.verifier)) == signer.verifier
    assert parse_signer_key(generate_signer_key("kit.example/audit")) != signer


# --- Signing and opening Go's notes.


def test_sign_reproduces_go_example_note() -> None:
    assert sign_note(TEXT, [PETER_SIGNER]) == NOTE["signed_note"]


def test_open_go_example_note() -> None:
    note = open_note(NOTE["signed_note"], [PETER])
    assert note.text == TEXT
    assert [s.key for s in note.signatures] == ["PeterNeumann+c74f20a3"]
    assert note.unverified == ()
    assert open_note(NOTE["signed_note"].encode(), [ENOCH, PETER]) == note


def test_cosigning_reproduces_go_example() -> None:
    peter_note = open_note(NOTE["signed_note"], [PETER])
    assert sign_note(peter_note.text, [ENOCH_SIGNER], keep=peter_note.signatures) == NOTE["cosigned_note"]
    # Go's Sign replaces a signer's old signature rather than repeating it.
    stale = Signature("PeterNeumann", PETER.key_id, b"old signature bytes")
    assert sign_note(TEXT, [PETER_SIGNER], keep=[stale]) == NOTE["signed_note"]


def test_open_cosigned_note_with_one_both_or_no_known_keys() -> None:
    cosigned = NOTE["cosigned_note"]
    only_peter = open_note(cosigned, [PETER])
    assert [s.key for s in only_peter.signatures] == ["PeterNeumann+c74f20a3"]
    assert [s.key for s in only_peter.unverified] == ["EnochRoot+af0cfe78"]
    both = open_note(cosigned, [PETER, ENOCH, ENOCH])
    assert [s.key for s in both.signatures] == ["PeterNeumann+c74f20a3", "EnochRoot+af0cfe78"]
    assert both.unverified == ()
    with pytest.raises(NoteRefused) as caught:
        open_note(cosigned, [])
    assert one_line(caught) == (
        "note refused: no signature by a known key (signed by PeterNeumann+c74f20a3, EnochRoot+af0cfe78)"
    )


def test_go_malformed_notes_are_refused_with_one_line() -> None:
    reasons = []
    for vector in NOTE["malformed_notes"]:
        with pytest.raises(MalformedNote) as caught:
            open_note(base64.b64decode(vector["note_base64"]), [PETER])
        reasons.append(one_line(caught))
    assert all(reason.startswith("malformed note: ") for reason in reasons)
    assert reasons == [
        "malformed note: no blank line before the signatures",
        "malformed note: no signature lines after the blank line",
        "malformed note: the signatures do not end in a newline",
        "malformed note: line 1 has control character U+0001",
        "malformed note: not UTF-8 (byte 0)",
        "malformed note: the signatures do not end in a newline",
        "malformed note: line 5 is not a signature line ('— name signature')",
    ]
    bad_name = base64.b64decode(NOTE["malformed_notes"][5]["note_base64"]) + b"\n"
    with pytest.raises(MalformedNote, match="line 4 is not '— name signature' with one space between them"):
        open_note(bad_name, [PETER])
    with pytest.raises(MalformedNote, match="line 4: 'Bad\\+Name' cannot name a key"):
        open_note(bad_name.replace(b"Bad Name", b"Bad+Name"), [PETER])


def test_go_invalid_signature_by_a_known_key_refuses_the_note() -> None:
    vector = NOTE["invalid_signature_note"]
    with pytest.raises(NoteRefused) as caught:
        open_note(vector["note"], [PETER])
    assert (
        one_line(caught) == "note refused: the signature of known key PeterNeumann+c74f20a3 does not verify"
    )


def test_go_duplicated_signatures() -> None:
    vector = NOTE["duplicated_signatures_note"]
    note = open_note(vector["note"], [PETER])
    assert [s.line.split(" ")[-1] for s in note.signatures] == vector["verified"]
    assert [s.line.split(" ")[-1] for s in note.unverified] == vector["unverified"]


def test_too_many_signatures() -> None:
    peter_line = NOTE["signed_note"].split("\n\n")[1]
    for known in ([PETER], []):
        with pytest.raises(MalformedNote, match="more than 100 signatures"):
            open_note(TEXT + "\n" + peter_line * 101, known)
    assert len(open_note(TEXT + "\n" + peter_line * 100, [PETER]).signatures) == 1


# --- Refusals the audit depends on.


def test_a_note_signed_by_another_key_is_refused() -> None:
    impostor = parse_signer_key(generate_signer_key("PeterNeumann"))
    forged = sign_note(TEXT, [impostor])
    with pytest.raises(NoteRefused, match="no signature by a known key"):
        open_note(forged, [PETER])
    # Claiming Peter's name and key ID only gets the forgery checked, and refused.
    signature = parse_note(forged)[1][0]
    claimed = Signature("PeterNeumann", PETER.key_id, signature.signature)
    with pytest.raises(NoteRefused, match="known key PeterNeumann\\+c74f20a3 does not verify"):
        open_note(TEXT + "\n" + claimed.line + "\n", [PETER])


def test_a_note_with_an_edited_text_is_refused() -> None:
    signed = NOTE["signed_note"]
    for position in range(len(TEXT) - 1):
        if TEXT[position] == "\n":
            continue
        edited = signed[:position] + ("X" if signed[position] != "X" else "Y") + signed[position + 1 :]
        with pytest.raises(NoteRefused, match="does not verify"):
            open_note(edited, [PETER])


def test_ambiguous_known_keys_are_refused() -> None:
    class Colliding(VerifierKey):
        """A key whose name and key ID collide with Peter's (2^32 work for real; faked here)."""

        @property
        def key_id(self) -> int:
            return PETER.key_id

    open_note(NOTE["signed_note"], [PETER, PETER])
    with pytest.raises(NoteRefused, match="two different known keys are both PeterNeumann\\+c74f20a3"):
        open_note(NOTE["signed_note"], [PETER, Colliding("PeterNeumann", ENOCH.public_key)])


def test_sign_note_refuses_texts_the_format_cannot_carry() -> None:
    for text, reason in [
        ("no newline", "does not end in a newline"),
        ("", "does not end in a newline"),
        ("tab\there\n", "line 1 has control character U+0009"),
        ("ok\ncarriage\r\n", "line 2 has control character U+000D"),
        ("lone \ud800 surrogate\n", "not UTF-8"),
    ]:
        with pytest.raises(MalformedNote, match=re.escape(reason)) as caught:
            sign_note(text, [PETER_SIGNER])
        one_line(caught)


def test_texts_with_blank_lines_round_trip() -> None:
    for text in ["\n", "a\n\nb\n", "a\n\n\n", "Ognuno sta solo sul cuor della terra\n\ned è subito sera.\n"]:
        note = sign_note(text, [PETER_SIGNER, ENOCH_SIGNER])
        assert open_note(note, [ENOCH]).text == text


@settings(max_examples=60, deadline=None)
@given(
    st.text(st.characters(blacklist_categories=("Cs", "Cc")) | st.just("\n"), max_size=80),
    st.data(),
)
def test_any_text_round_trips_and_any_edit_is_refused(body: str, data: st.DataObject) -> None:
    text = body + "\n"
    note = sign_note(text, [PETER_SIGNER])
    assert open_note(note, [PETER]).text == text
    position = data.draw(st.integers(0, len(text) - 1))
    if text[position] != "\n":
        edited = note[:position] + ("a" if text[position] != "a" else "b") + note[position + 1 :]
        with pytest.raises(NoteRefused):
            open_note(edited, [PETER])


# --- Checkpoints.


def test_go_tree_note_is_a_checkpoint() -> None:
    vector = TLOG["tree_note"]
    checkpoint = Checkpoint("go.sum database tree", vector["size"], leaf_hash(b"hello world"))
    assert format_checkpoint(checkpoint) == vector["text"]
    assert parse_checkpoint(vector["text"]) == checkpoint
    assert checkpoint.root_hash == base64.b64decode(vector["hash"])


def test_go_bad_tree_notes() -> None:
    other_origin, hex_size, big_hash = TLOG["bad_tree_notes"]
    # Go refuses any origin but its own; a checkpoint reader takes any origin.
    assert parse_checkpoint(other_origin).origin == "not-go.sum database tree"
    with pytest.raises(MalformedCheckpoint, match="line 2 \\(tree size\\) '0xabcdef'"):
        parse_checkpoint(hex_size)
    with pytest.raises(MalformedCheckpoint, match="line 3 \\(root hash\\)"):
        parse_checkpoint(big_hash)


def test_go_tree_note_junk_is_extensions_when_it_ends_in_a_newline() -> None:
    golden = TLOG["tree_note"]["text"]
    no_newline, one_line_, many = (s["repeat"] * s["times"] for s in TLOG["tree_note_junk_suffixes"])
    with pytest.raises(MalformedCheckpoint, match="does not end in a newline"):
        parse_checkpoint(golden + no_newline)
    assert parse_checkpoint(golden + one_line_).extensions == ("JOE",)
    assert parse_checkpoint(golden + many).extensions == ("JOE",) * 1000


def test_go_client_fork_notes_open_as_checkpoints() -> None:
    fork = TLOG["client_fork"]
    signer = parse_signer_key(fork["signer_key"])
    verifier = parse_verifier_key(fork["verifier_key"])
    assert signer.verifier == verifier
    common = fork["common_records"]
    old = open_checkpoint(fork["old_note"], [verifier])
    new = open_checkpoint(fork["new_note"], [verifier])
    assert (old.size, new.size) == (5, 6)
    assert old.root_hash == tree_hash(leaf_hash(r.encode()) for r in common + fork["old_log_records"][:1])
    assert new.root_hash == tree_hash(leaf_hash(r.encode()) for r in common + fork["new_log_records"])
    assert sign_checkpoint(old, [signer]) == fork["old_note"]
    assert sign_checkpoint(new, [signer]) == fork["new_note"]
    # The comment's "tree!" spelling is not what the signature covers.
    as_commented = "\n".join(fork["old_note_in_comment"]) + "\n"
    with pytest.raises(NoteRefused, match="does not verify"):
        open_checkpoint(as_commented, [verifier])


def test_c2sp_example_checkpoint_text_parses() -> None:
    # The example of c2sp.org/tlog-checkpoint (its signing key is not published).
    text = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    checkpoint = parse_checkpoint(text)
    assert (checkpoint.origin, checkpoint.size, checkpoint.extensions) == (
        "example.com/behind-the-sofa",
        20852163,
        (),
    )
    assert format_checkpoint(checkpoint) == text


def test_checkpoint_signed_by_another_key_is_refused() -> None:
    kit = parse_signer_key(generate_signer_key("kit.example/KIT-0042"))
    other = parse_signer_key(generate_signer_key("kit.example/KIT-0042"))
    checkpoint = Checkpoint("kit.example/KIT-0042", 7, tree_hash([leaf_hash(b"entry")] * 7), ("extension",))
    note = sign_checkpoint(checkpoint, [kit])
    assert open_checkpoint(note, [kit.verifier]) == checkpoint
    with pytest.raises(NoteRefused):
        open_checkpoint(note, [other.verifier])
    edited = note.replace("\n7\n", "\n8\n")
    with pytest.raises(NoteRefused):
        open_checkpoint(edited, [kit.verifier])


HASH = base64.b64encode(bytes(32)).decode()


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("origin\n5\n" + HASH, "does not end in a newline"),
        ("origin\n5\n", "2 lines, at least 3 needed"),
        ("\n5\n" + HASH + "\n", "line 1 is empty"),
        ("origin\n5\n" + HASH + "\n\n", "line 4 is empty"),
        ("origin\n5\n" + HASH + "\next\n\nmore\n", "line 5 is empty"),
        ("ori\tgin\n5\n" + HASH + "\n", "line 1 has a control character"),
        ("origin\n05\n" + HASH + "\n", "line 2 \\(tree size\\) '05' is not a decimal"),
        ("origin\n-5\n" + HASH + "\n", "line 2 \\(tree size\\) '-5'"),
        ("origin\n+5\n" + HASH + "\n", "line 2 \\(tree size\\) '\\+5'"),
        ("origin\n 5\n" + HASH + "\n", "line 2 \\(tree size\\) ' 5'"),
        ("origin\n\u0665\n" + HASH + "\n", "line 2 \\(tree size\\)"),
        (
            "origin\n9223372036854775808\n" + HASH + "\n",
            "line 2 \\(tree size\\) 9223372036854775808 is above",
        ),
        ("origin\n5\n" + HASH[:-1] + "\n", "line 3 \\(root hash\\) .* not canonical base64"),
        ("origin\n5\n" + HASH[:-2] + "B=\n", "line 3 \\(root hash\\) .* not canonical base64"),
        ("origin\n5\n" + base64.b64encode(bytes(31)).decode() + "\n", "line 3 \\(root hash\\) is 31 bytes"),
    ],
)
def test_malformed_checkpoints_name_the_line(text: str, reason: str) -> None:
    with pytest.raises(MalformedCheckpoint, match=reason) as caught:
        parse_checkpoint(text)
    assert one_line(caught).startswith("malformed checkpoint: ")


def test_checkpoint_sizes_at_the_edges() -> None:
    assert parse_checkpoint("o\n0\n" + HASH + "\n").size == 0
    assert parse_checkpoint(f"o\n{2**63 - 1}\n{HASH}\n").size == 2**63 - 1
    with pytest.raises(MalformedCheckpoint):
        format_checkpoint(Checkpoint("o", -1, bytes(32)))
    with pytest.raises(MalformedCheckpoint):
        format_checkpoint(Checkpoint("two\nlines", 1, bytes(32)))
    with pytest.raises(MalformedCheckpoint):
        format_checkpoint(Checkpoint("o", 1, bytes(32), ("",)))
