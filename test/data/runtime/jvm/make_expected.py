#!/usr/bin/env python3
"""Writes the expected JVM flags of the fixtures here, computed in Python
with granulate_utils' own regular expression (JvmFlag.vm_flags_pattern) and
gProfiler's filters (JavaMetadata.filter_jvm_flag,
default_collection_filter_jvm_flag, get_jvm_flags), independently of the C++
parser in runtime/jvm.cpp. Run: python3 make_expected.py"""
import json
import os
import re

HERE = os.path.dirname(os.path.abspath(__file__))
PATTERN = re.compile(
    r"(?P<flag_type>\S+)\s+"
    r"(?P<flag_name>\S+)\s+"
    r"(?P<flag_equal_sign_prefix>:)?= "
    r"(?P<flag_value>\S+)\s+"
    r"{(?P<flag_kind>.+?)}"
    r"(?:\s*{(?P<flag_origin_jdk_9>.*)})?"
)


def parse(text):
    out = []
    for line in text.splitlines():
        m = PATTERN.search(line)
        if m is None:
            continue
        origin9 = m.group("flag_origin_jdk_9")
        colon = m.group("flag_equal_sign_prefix") == ":"
        if colon or origin9 is None:
            origin = "non-default" if colon else "default"
        else:
            origin = origin9
        out.append({"name": m.group("flag_name"), "type": m.group("flag_type"),
                    "value": m.group("flag_value"), "origin": origin,
                    "kind": sorted(m.group("flag_kind").split())})
    return out


def supported(f):
    return f["type"] not in ("ccstr", "ccstrlist") and "manageable" not in f["kind"]


def default(f):
    return f["origin"] != "default" and not set(f["kind"]) & {"notproduct", "pd", "develop"}


def select(flags, what):
    flags = [f for f in flags if supported(f)]
    if what == "all":
        pass
    elif what == "default":
        flags = [f for f in flags if default(f)]
    else:
        names = [n.strip() for n in what.split(",")]
        flags = [f for f in flags if f["name"] in names]
    return sorted(flags, key=lambda f: f["name"])


CASES = {
    "vm_flags_all_jdk17_jattach.txt": [("default", "default"), ("all", "all"),
                                       ("list", "MaxHeapSize,UseG1GC, NoSuchFlag")],
    "vm_flags_jdk8.txt": [("default", "default"), ("all", "all")],
}

for fixture, selections in CASES.items():
    with open(os.path.join(HERE, fixture)) as f:
        flags = parse(f.read())
    for label, what in selections:
        name = fixture.rsplit(".", 1)[0] + "." + label + ".json"
        with open(os.path.join(HERE, name), "w") as f:
            f.write(json.dumps(select(flags, what), separators=(",", ":")) + "\n")
        print(name, len(select(flags, what)))


# Two small ELF files for the ELF-id tests: one with a GNU build-id note
# (the id is its 20 bytes in hex), one without (its id is the SHA-1 of the
# whole file), both 64-bit little-endian, with section headers only.
def elf(with_build_id):
    import struct
    note_name = b".note.gnu.build-id" if with_build_id else b".note.other"
    shstrtab = b"\0.shstrtab\0" + note_name + b"\0"
    desc = bytes(range(0x10, 0x24))
    # A vendor note first (skipped), then GNU's build id.
    note = struct.pack("<III", 4, 4, 1) + b"XYZ\0" + b"abcd"
    note += struct.pack("<III", 4, len(desc), 3) + b"GNU\0" + desc
    shoff = 64
    data_off = shoff + 3 * 64
    strtab_off = data_off
    note_off = strtab_off + len(shstrtab)
    header = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    header += struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, 0, 0, shoff, 0, 64, 0, 0, 64, 3, 1)
    def sh(name, type_, off, size):
        return struct.pack("<IIQQQQIIQQ", name, type_, 0, 0, off, size, 0, 0, 1, 0)
    sections = sh(0, 0, 0, 0) + sh(1, 3, strtab_off, len(shstrtab)) + sh(11, 7, note_off, len(note))
    return header + sections + shstrtab + note, desc.hex()


import hashlib
with open(os.path.join(HERE, "elf_ids.txt"), "w") as ids:
    for name, with_id in (("buildid.elf", True), ("no_buildid.elf", False)):
        data, desc = elf(with_id)
        with open(os.path.join(HERE, name), "wb") as f:
            f.write(data)
        line = f"{name} " + ("buildid:" + desc if with_id else "sha1:" + hashlib.sha1(data).hexdigest())
        ids.write(line + "\n")
        print(line)
