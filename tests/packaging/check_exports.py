#!/usr/bin/python3
"""Counts what a shared libfanout exports and fails on anything outside fanout's interface.

  /usr/bin/python3 tests/packaging/check_exports.py build/shared/libfanout.so

The library is built with hidden visibility and FANOUT_API on its public classes and functions
(include/fanout/export.hpp). Each exported symbol is classified by the namespace it belongs to (read
from its mangled name: typeinfo, vtables, thunks, guard variables and local statics count for
the entity they belong to):
  fanout  fanout::..., the interface.
  std     weak (vague-linkage) instantiations of std templates, e.g. std::vector<fanout::X>'s
          members or a shared_ptr control block's vtable. libstdc++ gives namespace std default
          visibility, so -fvisibility=hidden cannot hide them; being weak, the dynamic linker
          unifies them with the application's copies of the same inline code.
  asio    weak instantiations and statics of asio, a public dependency: its types are in fanout's
          headers and an application hands its io_context to fanout::Runtime. asio forces default
          visibility itself (asio/detail/push_options.hpp) because a process must have one copy of
          its statics: the service ids and the per-thread call stack that io_context::run() sets
          and the reactor reads (a hidden copy in libfanout would not see the application's run()
          and epoll_reactor would dereference a null thread_info). Never a strong asio symbol.
Anything else fails: fmt, simdjson, wslay or http_parser symbols (private dependencies: their
versions would clash with the application's), C symbols, strong std/asio definitions, or a
std/asio instantiation over fmt or simdjson types.
"""
import re
import subprocess
import sys

LINKER = {"_init", "_fini", "_edata", "_end", "__bss_start"}
WEAK = set("WVu")
STD_ABBREVIATIONS = ("St", "Sa", "Sb", "Ss", "Si", "So", "Sd")
PRIVATE = re.compile(r"\b(fmt|simdjson|wslay|http_parser)\b")


def owner(mangled):
    """The top-level namespace (or class) a mangled C++ symbol belongs to; None for C symbols."""
    if not mangled.startswith("_Z"):
        return None
    s = mangled[2:]
    while True:
        if s[:2] in ("TV", "TI", "TS", "TT", "GV"):  # vtable, typeinfo (name), VTT, guard variable
            s = s[2:]
        elif s[:2] in ("Th", "Tv"):  # thunks: one or two call offsets, each [n]<digits>_
            s = re.sub(r"^(n?\d+_){1,2}", "", s[2:])
        elif s[:1] in ("Z", "L"):  # a function's local entity; internal linkage
            s = s[1:]
        else:
            break
    if s.startswith("N"):
        s = s[1:].lstrip("rVKRO")
    if s.startswith(STD_ABBREVIATIONS):
        return "std"
    m = re.match(r"(\d+)", s)
    if m:
        n = int(m.group(1))
        return s[len(m.group(1)):len(m.group(1)) + n]
    return "?"


def symbols(lib):
    out = subprocess.run(["nm", "-D", "--defined-only", lib], check=True, capture_output=True,
                         text=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2].split("@")[0] not in LINKER:
            yield parts[1], parts[2]


def demangle(names):
    out = subprocess.run(["c++filt"], input="\n".join(names), check=True, capture_output=True,
                         text=True).stdout
    return out.splitlines()


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    syms = list(symbols(sys.argv[1]))
    counts = {"fanout": 0, "std": 0, "asio": 0}
    bad = []
    for (kind, name), readable in zip(syms, demangle([n for _, n in syms])):
        ns = owner(name)
        if ns == "fanout":
            counts["fanout"] += 1
        elif ns in ("std", "asio") and kind in WEAK and not PRIVATE.search(readable):
            counts[ns] += 1
        else:
            bad.append(f"{kind} {readable}")
    print(f"{sys.argv[1]}: {len(syms)} exported symbols: {counts['fanout']} fanout::, "
          f"{counts['std']} weak std:: instantiations, {counts['asio']} weak asio:: "
          f"(one copy per process), {len(bad)} others")
    for b in bad[:50]:
        print("  not fanout's interface: " + b[:300])
    if len(bad) > 50:
        print(f"  ... and {len(bad) - 50} more")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
