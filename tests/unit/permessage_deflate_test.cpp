#include <doctest/doctest.h>

#include <fanout/detail/permessage_deflate.hpp>

using fanout::detail::negotiate_permessage_deflate;

namespace {
constexpr std::string_view k_answer = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
}

TEST_CASE("permessage-deflate: what browsers and python websockets offer is accepted, without context") {
  CHECK(negotiate_permessage_deflate("permessage-deflate; client_max_window_bits") == k_answer);
  CHECK(negotiate_permessage_deflate("permessage-deflate") == k_answer);
  CHECK(negotiate_permessage_deflate("Permessage-Deflate; Client_Max_Window_Bits=10") == k_answer);
  CHECK(negotiate_permessage_deflate("permessage-deflate; server_no_context_takeover; client_no_context_takeover") ==
        k_answer);
  CHECK(negotiate_permessage_deflate("permessage-deflate; client_max_window_bits=\"12\"") == k_answer);
  CHECK(negotiate_permessage_deflate("permessage-deflate; server_max_window_bits=15") ==
        std::string(k_answer) + "; server_max_window_bits=15");
}

TEST_CASE("permessage-deflate: nothing offered, or other extensions only") {
  CHECK(negotiate_permessage_deflate("").empty());
  CHECK(negotiate_permessage_deflate("x-webkit-deflate-frame").empty());
  CHECK(negotiate_permessage_deflate("permessage-deflatex").empty());
  CHECK(negotiate_permessage_deflate(",,,;;;").empty());
}

TEST_CASE("permessage-deflate: hostile offers are declined") {
  for (const char* offer : {
           "permessage-deflate; server_no_context_takeover; server_no_context_takeover",  // duplicate
           "permessage-deflate; client_max_window_bits; client_max_window_bits=9",        // duplicate
           "permessage-deflate; server_no_context_takeover=1",                            // value where none
           "permessage-deflate; client_no_context_takeover=\"\"",
           "permessage-deflate; server_max_window_bits",     // value required
           "permessage-deflate; server_max_window_bits=10",  // smaller than the shared window
           "permessage-deflate; server_max_window_bits=16",  // out of range
           "permessage-deflate; client_max_window_bits=7",   // out of range
           "permessage-deflate; client_max_window_bits=16",
           "permessage-deflate; client_max_window_bits=015",  // leading zero
           "permessage-deflate; client_max_window_bits=-9",
           "permessage-deflate; client_max_window_bits=99999999999999999999",
           "permessage-deflate; client_max_window_bits=abc",
           "permessage-deflate; client_max_window_bits=\"9",
           "permessage-deflate; mystery",  // unknown parameter
           "permessage-deflate; =15",
       }) {
    CAPTURE(offer);
    CHECK(negotiate_permessage_deflate(offer).empty());
  }
}

TEST_CASE("permessage-deflate: a declined offer falls back to the next one") {
  CHECK(negotiate_permessage_deflate("permessage-deflate; server_max_window_bits=9, permessage-deflate") == k_answer);
  CHECK(negotiate_permessage_deflate("foo; bar=\"a,b\", permessage-deflate; client_max_window_bits") == k_answer);
}
