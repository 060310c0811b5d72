#include <doctest/doctest.h>

#include <fanout/frame.hpp>

#include <string>

using fanout::Frame;
using fanout::Opcode;

static std::string bytes_of(const fanout::FrameRef& f) {
  return {reinterpret_cast<const char*>(f->bytes().data()), f->bytes().size()};
}

TEST_CASE("small text frame: 2-byte header, FIN, unmasked") {
  auto f = Frame::make(Opcode::text, "hello");
  CHECK(bytes_of(f) == std::string("\x81\x05hello", 7));
  CHECK(f->payload_view() == "hello");
  CHECK(f->opcode() == Opcode::text);
}

TEST_CASE("frame length encodings: 125, 126, 65535, 65536") {
  for (std::size_t n : {125u, 126u, 65535u, 65536u}) {
    auto f = Frame::make(Opcode::binary, std::string(n, 'a'));
    const auto b = f->bytes();
    CHECK(static_cast<unsigned>(b[0]) == 0x82u);
    const std::size_t header = n < 126 ? 2 : n <= 0xFFFF ? 4 : 10;
    CHECK(f->size() == header + n);
    CHECK(f->payload().size() == n);
    if (header == 4) CHECK(((static_cast<unsigned>(b[2]) << 8) | static_cast<unsigned>(b[3])) == n);
  }
}

TEST_CASE("close frame carries code and a reason cut on a UTF-8 boundary") {
  auto f = Frame::make_close(1001, "going away");
  CHECK(bytes_of(f).substr(0, 4) == std::string("\x88\x0c\x03\xe9", 4));
  std::string long_reason(122, 'a');
  long_reason += "\xc3\xa9\xc3\xa9";  // é é: the cut must not split one
  auto g = Frame::make_close(1000, long_reason);
  CHECK(g->payload().size() <= 125);
  CHECK(g->payload().size() == 2 + 123 - 1);  // 122 'a' + one whole é would be 124 > 123
}

TEST_CASE("FrameRef shares one frame") {
  auto f = Frame::make(Opcode::text, "x");
  fanout::FrameRef a = f, b = a;
  CHECK(a.get() == f.get());
  CHECK(b.get() == f.get());
}
