// The TLS 1.3 record layer (fanout/detail/tls13_records.hpp), fed what a hostile client can send.
//
// Input: [mode] [n] [n chunk sizes] [body]. mode's low bit chooses what the body is, the rest the
// suite; the stream made from the body reaches open() in chunks of the given sizes (cycled; a size
// byte b gives b*b+1 bytes, 0 the whole rest), so records end at every boundary over the corpus.
//   mode & 1 == 0: the body is the stream itself: headers, lengths and tags as they come.
//   mode & 1 == 1: the body is items [kind] [len lo] [len hi] [len bytes], each sealed by the
//     mirror (the client's side, secrets swapped) so the tag is right and the inner handling is
//     reached: application data, alerts, handshake messages, KeyUpdate, padding, any inner type;
//     and a few ways to break a record (raw bytes, a flipped bit).
// Checked: delivered data is a prefix of the application data sealed, and all of it when every
// item was good; nothing is delivered after fatal or peer_closed; a KeyUpdate the server owes
// opens at the mirror, and the server's records after it too (gathered from pieces the input chose).
#include <fanout/detail/tls13_records.hpp>

#include <sys/uio.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

namespace {

using fanout::detail::Tls13Records;
using End = Tls13Records::End;
using Bytes = std::vector<std::byte>;

struct Input {
  const std::uint8_t* at;
  const std::uint8_t* end;
  std::size_t left() const { return static_cast<std::size_t>(end - at); }
  std::uint8_t byte() { return at < end ? *at++ : 0; }
  std::span<const std::uint8_t> take(std::size_t n) {
    n = std::min(n, left());
    const std::span<const std::uint8_t> s(at, n);
    at += n;
    return s;
  }
};

Bytes bytes_of(std::span<const std::uint8_t> s) {
  const auto b = std::as_bytes(s);
  return Bytes(b.begin(), b.end());
}

void append(Bytes& to, const Bytes& b) { to.insert(to.end(), b.begin(), b.end()); }

Bytes sealed(Tls13Records& r, const Bytes& plain, Tls13Records::ContentType type) {
  Bytes out(plain.size() + Tls13Records::k_overhead);
  if (r.seal(plain, out.data(), type) != out.size()) std::abort();  // at most 2^14 bytes: must seal
  return out;
}

// An object reading with the secret made from `read_fill` and writing with `write_fill`'s.
std::unique_ptr<Tls13Records> make(std::uint16_t id, std::uint8_t read_fill, std::uint8_t write_fill) {
  const std::size_t len = id == 0x1302 ? 48 : 32;
  std::uint8_t read[48], write[48];
  for (std::size_t i = 0; i < len; ++i) {
    read[i] = static_cast<std::uint8_t>(read_fill + 7 * i);
    write[i] = static_cast<std::uint8_t>(write_fill + 7 * i);
  }
  auto r = Tls13Records::make(id, {read, len}, {write, len}, 0);
  if (!r) std::abort();
  return r;
}

// Everything the mirror sealed, and what the server should deliver of it.
struct Stream {
  Bytes bytes;
  Bytes app;             // application data, in order
  bool all_good = true;  // only records the server must accept, so all of `app` is delivered
};

void add_items(Input& in, Tls13Records& mirror, Stream& out) {
  while (in.left() > 0) {
    const std::uint8_t kind = in.byte();
    std::size_t len = in.byte();
    len |= std::size_t{in.byte()} << 8;
    Bytes body = bytes_of(in.take(std::min(len, Tls13Records::k_max_plain)));
    switch (kind % 8) {
      case 0:  // application data
        append(out.bytes, sealed(mirror, body, Tls13Records::application_data));
        append(out.app, body);
        break;
      case 1:  // an alert (two bytes ends the peer's writing, others are decode_error)
        append(out.bytes, sealed(mirror, body, Tls13Records::alert));
        out.all_good = false;
        break;
      case 2:  // a handshake message as it comes
        append(out.bytes, sealed(mirror, body, Tls13Records::handshake));
        out.all_good = false;
        break;
      case 3: {  // a proper KeyUpdate; the mirror's write side moves to its next secret
        Bytes ku(Tls13Records::k_overhead + 5);
        if (mirror.seal_key_update(ku.data(), (len & 1) != 0) != ku.size()) std::abort();
        append(out.bytes, ku);
        break;
      }
      case 4: {  // the first byte is the inner content type, the rest the content (padding, any type)
        if (body.empty()) break;
        const auto type = static_cast<Tls13Records::ContentType>(body[0]);
        Bytes inner(body.begin() + 1, body.end());
        append(out.bytes, sealed(mirror, inner, type));
        // TLSInnerPlaintext: the last non-zero byte is the type (type 0 finds it in the content).
        inner.push_back(static_cast<std::byte>(type));
        while (!inner.empty() && inner.back() == std::byte{0}) inner.pop_back();
        if (!inner.empty() && inner.back() == std::byte{Tls13Records::application_data}) {
          inner.pop_back();
          append(out.app, inner);
        } else {
          out.all_good = false;
        }
        break;
      }
      case 5:  // application data with zero padding after its content type
        if (body.size() < len % 7 + 1) break;
        body.resize(body.size() - len % 7 - 1);
        {
          const std::size_t content = body.size();
          body.push_back(std::byte{Tls13Records::application_data});
          body.resize(body.size() + len % 7);
          append(out.bytes, sealed(mirror, body, Tls13Records::ContentType{0}));
          append(out.app, Bytes(body.begin(), body.begin() + static_cast<std::ptrdiff_t>(content)));
        }
        break;
      case 6:  // raw bytes between records
        append(out.bytes, body);
        out.all_good = out.all_good && body.empty();
        break;
      case 7: {  // a record with one bit flipped
        Bytes r = sealed(mirror, body, Tls13Records::application_data);
        r[len % r.size()] ^= static_cast<std::byte>(1u << (kind >> 5));
        append(out.bytes, r);
        out.all_good = false;
        break;
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  Input in{data, data + size};
  const std::uint8_t mode = in.byte();
  constexpr std::uint16_t k_ids[] = {0x1301, 0x1302, 0x1303};
  const std::uint16_t id = k_ids[(mode >> 1) % 3];
  std::size_t chunks[16], pieces[16];  // read sizes; the same bytes as the server's gathered pieces
  const std::size_t n_chunks = in.byte() % 16;
  for (std::size_t i = 0; i < n_chunks; ++i) {
    const std::size_t b = in.byte();
    chunks[i] = b == 0 ? size : b * b + 1;
    pieces[i] = b * b;  // 0: an empty piece
  }

  auto server = make(id, 0x11, 0x5a);
  auto mirror = make(id, 0x5a, 0x11);  // reads what the server writes, writes what it reads
  Stream stream;
  if ((mode & 1) == 0) {
    stream.bytes = bytes_of(in.take(in.left()));
    stream.all_good = false;
  } else {
    add_items(in, *mirror, stream);
  }

  Bytes delivered;
  End end = End::more;
  std::size_t at = 0;
  for (std::size_t i = 0; at < stream.bytes.size() && end == End::more; ++i) {
    const std::size_t k =
        std::min(n_chunks == 0 ? stream.bytes.size() : chunks[i % n_chunks], stream.bytes.size() - at);
    end = server->open(std::span(stream.bytes).subspan(at, k), [&](std::span<const std::byte> plain) {
      if (plain.size() > Tls13Records::k_max_plain) std::abort();
      delivered.insert(delivered.end(), plain.begin(), plain.end());
      return true;
    });
    at += k;
    if (server->pending_bytes() > Tls13Records::k_max_record) std::abort();
  }
  if (end == End::fatal) {
    Bytes out(Tls13Records::k_overhead + 2);
    if (server->seal_alert(server->fatal_alert(), out.data()) != out.size()) std::abort();
  }
  // Whatever came, nothing after the end is looked at.
  if (end != End::more) {
    Bytes more = stream.bytes;
    const End again = server->open(more, [](std::span<const std::byte>) -> bool { std::abort(); });
    if (again != end) std::abort();
  }
  if (delivered.size() > stream.app.size() || !std::equal(delivered.begin(), delivered.end(), stream.app.begin()))
    std::abort();
  if (stream.all_good && (end != End::more || delivered != stream.app || server->pending_bytes() != 0)) std::abort();

  // The server's side: its owed KeyUpdate, then a record, must open at the mirror.
  if (end == End::more) {
    Bytes out;
    if (server->key_update_due()) {
      Bytes ku(Tls13Records::k_overhead + 5);
      if (server->seal_key_update(ku.data()) != ku.size() || server->key_update_due()) std::abort();
      append(out, ku);
    }
    const Bytes echo(delivered.begin(), delivered.begin() + static_cast<std::ptrdiff_t>(
                                                                std::min(delivered.size(), Tls13Records::k_max_plain)));
    // ... gathered from pieces of the sizes the input chose, empty ones and ones past 2 KiB among them.
    std::vector<iovec> gather;
    for (std::size_t at = 0, i = 0; at < echo.size() || (i < n_chunks && gather.size() < 4); ++i) {
      const std::size_t n =
          n_chunks == 0 || gather.size() >= 64 ? echo.size() - at : std::min(pieces[i % n_chunks], echo.size() - at);
      gather.push_back({const_cast<std::byte*>(echo.data()) + at, n});
      at += n;
    }
    Bytes record(echo.size() + Tls13Records::k_overhead);
    if (server->seal(gather, echo.size(), record.data()) != record.size()) std::abort();
    append(out, record);
    Bytes back;
    const End e = mirror->open(out, [&](std::span<const std::byte> plain) {
      back.insert(back.end(), plain.begin(), plain.end());
      return true;
    });
    if (e != End::more || back != echo) std::abort();
  }
  return 0;
}
