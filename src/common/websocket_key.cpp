#include "fanout/detail/websocket_key.hpp"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <array>
#include <stdexcept>

namespace fanout::detail {
namespace {

template <std::size_t N>
std::string base64(const std::array<unsigned char, N>& bytes) {
  std::array<unsigned char, 4 * ((N + 2) / 3) + 1> out{};  // EVP_EncodeBlock writes a trailing NUL
  const int n = EVP_EncodeBlock(out.data(), bytes.data(), static_cast<int>(N));
  return std::string(reinterpret_cast<const char*>(out.data()), static_cast<std::size_t>(n));
}

}  // namespace

std::string websocket_accept(std::string_view key) {
  static constexpr std::string_view guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  std::string input(key);
  input += guid;
  std::array<unsigned char, SHA_DIGEST_LENGTH> digest{};
  unsigned int size = 0;
  EVP_Digest(input.data(), input.size(), digest.data(), &size, EVP_sha1(), nullptr);
  return base64(digest);
}

bool valid_websocket_key(std::string_view key) noexcept {
  if (key.size() != 24 || key.substr(22) != "==") return false;
  for (char c : key.substr(0, 22)) {
    const bool b64 = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
    if (!b64) return false;
  }
  return true;
}

std::string make_websocket_key() {
  std::array<unsigned char, 16> nonce{};
  if (RAND_bytes(nonce.data(), static_cast<int>(nonce.size())) != 1)
    throw std::runtime_error("make_websocket_key: RAND_bytes failed");
  return base64(nonce);
}

}  // namespace fanout::detail
