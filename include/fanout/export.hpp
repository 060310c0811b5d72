#pragma once
// FANOUT_API marks what a shared libfanout exports. The library is compiled with hidden visibility
// (-fvisibility=hidden -fvisibility-inlines-hidden), so the .so shows fanout's interface and nothing
// of asio, fmt or simdjson it was built with: their versions in the application cannot clash with
// ours. A static build (the default) needs no marks; FANOUT_SHARED comes with the fanout::fanout
// target (and fanout.pc) of a shared build.
//
//   class FANOUT_API Hub { ... };             // a class: its members, vtable and typeinfo
//   FANOUT_API std::string encode(...);       // a free function
#if defined(FANOUT_SHARED) && (defined(__GNUC__) || defined(__clang__))
#define FANOUT_API __attribute__((visibility("default")))
#else
#define FANOUT_API
#endif
