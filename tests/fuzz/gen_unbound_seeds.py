#!/usr/bin/env python3
"""Writes the seed corpus of unbound_result_fuzzer (corpus/unbound_result/).

The fuzzer reads its input with FuzzedDataProvider: integers from the end of
the input, strings from the front. This script encodes readable ub_result
descriptions in that layout; rerun it after changing the fuzzer's layout:
    python3 tests/fuzz/gen_unbound_seeds.py
"""
import pathlib
import struct

QTYPES = ["A", "AAAA", "MX", "TXT", "TLSA", "CNAME"]  # fuzzer's order
NO_DATA, CANON, HAVEDATA, NXDOMAIN, SECURE, BOGUS, WHY = 1, 2, 4, 8, 16, 32, 64


def rls(s: bytes) -> bytes:
    """ConsumeRandomLengthString encoding: '\\' doubled, '\\' + 'x' ends."""
    return s.replace(b"\\", b"\\\\") + b"\\x"


def name(dotted: str) -> bytes:
    out = b""
    for label in dotted.split("."):
        if label:
            raw = label.encode("latin-1")
            out += bytes([len(raw)]) + raw
    return out + b"\0"


def seed(qtype, flags, rcode, ttl, blobs, qname="example.com",
         canon="example.com.", why="signature expired", any_rcode=False):
    tail = []  # integers in consumption order; stored reversed at the end
    tail.append(bytes([QTYPES.index(qtype)]))
    tail.append(bytes([flags]))
    tail.append(bytes([1 if any_rcode else 0]))
    if any_rcode:
        tail.append(struct.pack(">I", (rcode + 2**31) % 2**32)[::-1])
    else:
        tail.append(bytes([rcode]))
    tail.append(struct.pack(">I", (ttl + 2**31) % 2**32)[::-1])
    tail.append(bytes([len(blobs)]))
    front = rls(qname.encode()) + rls(canon.encode()) + rls(why.encode())
    for i, blob in enumerate(blobs):
        tail.append(b"\xff\xff\xff\xff")  # probability ~1: length kept
        front += blob if i + 1 == len(blobs) else rls(blob)
    # FuzzedDataProvider takes integer bytes from the end, last byte first.
    end = b"".join(t[::-1] for t in tail)[::-1]
    return front + end


SEEDS = {
    "a_secure": seed("A", HAVEDATA | SECURE | CANON, 0, 300,
                     [bytes([192, 0, 2, 1]), bytes([192, 0, 2, 2])]),
    "aaaa_insecure": seed("AAAA", HAVEDATA, 0, 60,
                          [bytes.fromhex("20010db8000000000000000000000001")]),
    "mx_two": seed("MX", HAVEDATA | SECURE, 0, 3600,
                   [b"\x00\x0a" + name("mx1.example.com"),
                    b"\x00\x14" + name("MX2.Example.COM")]),
    "mx_null": seed("MX", HAVEDATA | SECURE, 0, 3600, [b"\x00\x00\x00"]),
    "mx_hostile_labels": seed("MX", HAVEDATA, 0, 3600,
                              [b"\x00\x0a" + name("mx evil;x=1") ,
                               b"\x00\x0a\x03a.b\x07example\x00",
                               b"\x00\x0a\x04a\\\x7f\x01\x00"]),
    "mx_compression": seed("MX", HAVEDATA, 0, 3600, [b"\x00\x0a\xc0\x0c"]),
    "mx_trailing": seed("MX", HAVEDATA, 0, 3600,
                        [b"\x00\x0a" + name("mx.example") + b"junk"]),
    "txt_sts": seed("TXT", HAVEDATA | SECURE, 0, 300,
                    [b"\x0dv=STSv1; id=a\x03bc;", b"\x0bv=spf1 -all"],
                    qname="_mta-sts.example.com"),
    "txt_overrun": seed("TXT", HAVEDATA, 0, 300, [b"\x20short"]),
    "txt_empty": seed("TXT", HAVEDATA, 0, 300, [b""]),
    "tlsa": seed("TLSA", HAVEDATA | SECURE, 0, 300,
                 [bytes([3, 1, 1]) + bytes(range(32)), bytes([2, 0, 1])],
                 qname="_25._tcp.mx1.example.com"),
    "tlsa_short": seed("TLSA", HAVEDATA | SECURE, 0, 300, [b"\x03\x01"]),
    "cname": seed("CNAME", HAVEDATA | SECURE | CANON, 0, 300,
                  [name("_mta-sts.provider.example")]),
    "bogus": seed("MX", HAVEDATA | BOGUS | WHY, 0, 300,
                  [b"\x00\x0a" + name("forged.example")]),
    "bogus_no_why": seed("A", HAVEDATA | BOGUS, 0, 300, [bytes([10, 0, 0, 1])]),
    "servfail": seed("A", 0, 2, 0, []),
    "refused_with_data": seed("A", HAVEDATA, 5, 0, [bytes([10, 0, 0, 1])]),
    "nxdomain": seed("MX", NXDOMAIN | SECURE | NO_DATA, 3, 900, []),
    "nodata": seed("TLSA", SECURE | NO_DATA, 0, 900, []),
    "a_bad_length": seed("A", HAVEDATA, 0, 300, [bytes([1, 2, 3, 4, 5])]),
    "odd_rcode_negative_ttl": seed("AAAA", HAVEDATA, -7, -1, [b"\x00" * 16],
                                   any_rcode=True),
}

if __name__ == "__main__":
    out = pathlib.Path(__file__).resolve().parent / "corpus" / "unbound_result"
    out.mkdir(parents=True, exist_ok=True)
    for key, data in SEEDS.items():
        (out / key).write_bytes(data)
