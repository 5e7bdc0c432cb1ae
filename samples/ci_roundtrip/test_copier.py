"""Round-trip tests: what copier.py logs, captured by a private session and decoded."""
import re

import copier


def test_read_is_traced(wpp_capture):
    with wpp_capture(copier.trace) as cap:
        copier.copy(b"hello", "a.txt")
    cap.assert_logged("read %d bytes from %s", 5, "a.txt")
    assert cap.messages[0].args["name"] == "a.txt"


def test_empty_file_warns(wpp_capture):
    with wpp_capture(copier.trace, flags="CHECK") as cap:
        copier.copy(b"", "empty.txt")
    assert cap.texts == ["empty.txt is empty"]
    assert cap.messages[0].function == "copy"


def test_logging_records_are_captured_too(wpp_capture):
    with wpp_capture(copier.trace, logging=True) as cap:
        copier.copy(b"xy", "b.txt")
    cap.assert_logged_re(r"^copied b\.txt$")
    cap.assert_logged("read %d bytes from %s", count=1)
    assert not cap.find(re.compile("empty"))
