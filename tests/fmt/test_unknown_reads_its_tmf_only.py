"""An Unknown message (a number its provider's TMF does not list) reads only its provider's
TMF files, as a known one does.

Regression: the component an Unknown line shows was found by listing every message of the
TMF set, which read and parsed every TMF file at the first Unknown message: on a trace of 120
of the corpus driver's 2,610 messages, 3,865 entries parsed instead of 120 (0.08 s against
0.04 s of a cold run), and the problems of TMF files the trace never uses reported.
"""
from __future__ import annotations

import shutil

import golden_traces
from fmthelp import run_fmt_capture

from wpptrace import tmf
from wpptrace.decoder import decode_file


def test_an_unknown_message_reads_only_its_providers_tmf(tmp_path, corpus):
    [path], [driver_tmf] = golden_traces.build("repeat", tmp_path, corpus)
    tmf_dir = tmp_path / "tmf"
    shutil.copytree(driver_tmf, tmf_dir)
    decoded = decode_file(str(path), tmf=str(tmf_dir))
    unknown = [m for m in decoded.messages if "No Format Information found" in m.text]
    assert unknown                                   # the trace has Unknown messages
    used = {m.guid for m in decoded.messages}
    unused = sorted(set(tmf.load(str(tmf_dir)).guids()) - used)
    assert unused
    damaged = tmf_dir / f"{unused[-1]}.tmf"          # a provider the trace never logs with
    damaged.write_text(damaged.read_text(encoding="utf-8-sig") + "this is not a TMF line\n",
                       encoding="utf-8")
    out = tmp_path / "out.txt"
    code, _stdout, err = run_fmt_capture(path, tmf_dirs=[str(tmf_dir)], output=str(out),
                                         summary=str(out) + ".sum", utc=True, cache=False)
    assert code == 0 and err == ""
    text = out.read_text(encoding="utf-8")
    for message in unknown[:3]:                      # the Unknown lines as before
        assert message.text in text
