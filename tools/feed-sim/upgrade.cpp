#include "upgrade.hpp"

#include <fmt/format.h>
#include <openssl/evp.h>

#include <array>
#include <cctype>
#include <unordered_set>

namespace fanout::sim::detail {
namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = char(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Splits on sep, trimming each piece.
std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  for (;;) {
    auto at = s.find(sep);
    out.push_back(trim(s.substr(0, at)));
    if (at == std::string_view::npos) return out;
    s.remove_prefix(at + 1);
  }
}

}  // namespace

std::string Request::header(std::string_view name) const {
  std::string out;
  for (auto& [k, v] : headers) {
    if (k != name) continue;
    if (!out.empty()) out += ", ";
    out += v;
  }
  return out;
}

bool has_token(std::string_view list, std::string_view token) {
  for (auto t : split(list, ','))
    if (lower(t) == token) return true;
  return false;
}

bool parse_request(std::string_view head, Request& req) {
  auto lines = std::vector<std::string_view>{};
  while (!head.empty()) {
    auto at = head.find("\r\n");
    if (at == std::string_view::npos) break;
    lines.push_back(head.substr(0, at));
    head.remove_prefix(at + 2);
  }
  if (lines.empty()) return false;
  auto parts = split(lines[0], ' ');
  if (parts.size() != 3 || parts[2].substr(0, 5) != "HTTP/") return false;
  req.method = parts[0];
  req.target = parts[1];
  for (std::size_t i = 1; i < lines.size(); ++i) {
    if (lines[i].empty()) break;
    auto colon = lines[i].find(':');
    if (colon == std::string_view::npos || colon == 0) return false;
    req.headers.emplace_back(lower(lines[i].substr(0, colon)), std::string(trim(lines[i].substr(colon + 1))));
  }
  return true;
}

std::string websocket_accept(std::string_view key) {
  std::string in(key);
  in += "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int md_len = 0;
  EVP_Digest(in.data(), in.size(), md, &md_len, EVP_sha1(), nullptr);
  std::array<unsigned char, 4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1> b64{};
  int n = EVP_EncodeBlock(b64.data(), md, int(md_len));
  return std::string(reinterpret_cast<const char*>(b64.data()), std::size_t(n));
}

int negotiate_deflate(std::string_view offers, std::string& response) {
  if (offers.empty()) return 0;
  for (auto offer : split(offers, ',')) {
    auto params = split(offer, ';');
    if (lower(params[0]) != "permessage-deflate") continue;
    bool ok = true;
    int server_bits = 0;  // 0: not offered
    std::unordered_set<std::string> seen;
    for (std::size_t i = 1; i < params.size() && ok; ++i) {
      auto eq = params[i].find('=');
      std::string name = lower(trim(params[i].substr(0, eq)));
      std::string_view value = eq == std::string_view::npos ? std::string_view{} : trim(params[i].substr(eq + 1));
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
      if (!seen.insert(name).second) {
        ok = false;
      } else if (name == "server_no_context_takeover" || name == "client_no_context_takeover") {
        ok = eq == std::string_view::npos;
      } else if (name == "server_max_window_bits" || name == "client_max_window_bits") {
        int bits = 0;
        if (value.empty()) {
          ok = name == "client_max_window_bits";  // a bare client_max_window_bits means "you may limit me"
          continue;
        }
        for (char c : value) {
          if (c < '0' || c > '9' || bits > 100) {
            ok = false;
            break;
          }
          bits = bits * 10 + (c - '0');
        }
        if (bits < 8 || bits > 15) ok = false;
        // zlib's raw deflate cannot honour a window of 256 bytes; decline that offer.
        if (name == "server_max_window_bits") {
          if (bits == 8) ok = false;
          server_bits = bits;
        }
      } else {
        ok = false;
      }
    }
    if (!ok) continue;
    response = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
    if (server_bits) response += fmt::format("; server_max_window_bits={}", server_bits);
    return server_bits ? server_bits : 15;
  }
  return 0;
}

std::string http_response(std::string_view status, std::string_view content_type, std::string_view body,
                          std::string_view extra) {
  return fmt::format("HTTP/1.1 {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n{}", status,
                     content_type, body.size(), extra, body);
}

}  // namespace fanout::sim::detail
