#!/usr/bin/python3
"""Counts what a shared libfanout exports and fails on anything outside fanout's interface.

  /usr/bin/python3 tests/packaging/check_exports.py build/shared/libfanout.so

The library is built with hidden visibility and FANOUT_API on its public classes and functions
(include/fanout/export.hpp). Allowed in the dynamic symbol table:
  fanout      fanout::... functions, their vtables, typeinfo, thunks and guard variables;
  std         weak (vague-linkage) instantiations of std templates, e.g. std::vector<fanout::X>::
              _M_realloc_insert or std::shared_ptr<fanout::Y>'s control block. libstdc++ declares
              namespace std with default visibility, so -fvisibility=hidden cannot hide them; being
              weak, the dynamic linker unifies them with the application's own copies of the same
              inline code, so they add no second definition. None may mention asio, fmt or simdjson.
Everything else fails the test: asio, fmt, simdjson, wslay or http_parser symbols mean the .so
exports its dependencies, whose versions would then clash with the application's.
"""
import re
import subprocess
import sys

LINKER = {"_init", "_fini", "_edata", "_end", "__bss_start"}
FANOUT = re.compile(r"^_Z(N|NK|TVN|TIN|TSN|GVN|Th[n0-9_]+N|Tv[n0-9_]+N|Tc[n0-9_]+N)6fanout")
STD = re.compile(r"^_Z(NSt|NKSt|St|TVNSt|TINSt|TSNSt|GVNSt|NSa|NKSa|NSs|NKSs|NSi|NSo|Th[n0-9_]+NSt)")
FOREIGN = re.compile(r"\b(asio|fmt|simdjson|wslay|http_parser)\b")


def symbols(lib):
    out = subprocess.run(["nm", "-D", "--defined-only", lib], check=True, capture_output=True,
                         text=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3:
            yield parts[1], parts[2]


def demangle(names):
    if not names:
        return []
    out = subprocess.run(["c++filt"], input="\n".join(names), check=True, capture_output=True,
                         text=True).stdout
    return out.splitlines()


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    counts = {"fanout": 0, "std": 0}
    bad = []
    syms = [(k, n) for k, n in symbols(sys.argv[1]) if n.split("@")[0] not in LINKER]
    names = [n for _, n in syms]
    for (kind, name), readable in zip(syms, demangle(names)):
        if FANOUT.match(name):
            counts["fanout"] += 1
        elif STD.match(name) and kind in "WVu" and not FOREIGN.search(readable):
            counts["std"] += 1
        else:
            bad.append(f"{kind} {readable}")
    total = len(syms)
    print(f"{sys.argv[1]}: {total} exported symbols: {counts['fanout']} fanout::, "
          f"{counts['std']} weak std:: instantiations, {len(bad)} others")
    if bad:
        print("exported but not fanout's interface:")
        for b in bad[:50]:
            print("  " + b)
        if len(bad) > 50:
            print(f"  ... and {len(bad) - 50} more")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
