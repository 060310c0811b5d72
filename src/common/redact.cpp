#include "fanout/redact.hpp"

#include <algorithm>
#include <cctype>

namespace fanout {

namespace {

bool scheme_char(char c) noexcept {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
}
bool name_char(char c) noexcept {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
}
/// Where a URL quoted in text ends: whitespace, a quote or an angle bracket.
bool url_end(char c) noexcept {
  return std::isspace(static_cast<unsigned char>(c)) || c == '"' || c == '\'' || c == '<' || c == '>' || c == '`';
}

/// Replaces the values of sensitive `name=value` pairs in a query (separated by '&' or ';').
void redact_query(std::string_view query, std::string& out) {
  while (true) {
    const auto end = query.find_first_of("&;");
    const auto pair = query.substr(0, end);
    const auto eq = pair.find('=');
    if (eq != std::string_view::npos && is_sensitive_name(pair.substr(0, eq))) {
      out.append(pair.substr(0, eq + 1));
      out.append(k_redacted);
    } else {
      out.append(pair);
    }
    if (end == std::string_view::npos) return;
    out += query[end];
    query.remove_prefix(end + 1);
  }
}

/// Redacts a URL (scheme "://" present) into `out`.
void redact_one_url(std::string_view url, std::string& out) {
  const auto sep = url.find("://");
  out.append(url.substr(0, sep + 3));
  auto rest = url.substr(sep + 3);
  const auto authority_end = std::min(rest.find_first_of("/?#"), rest.size());
  const auto authority = rest.substr(0, authority_end);
  if (const auto at = authority.rfind('@'); at != std::string_view::npos) {
    out.append(k_redacted);
    out.append(authority.substr(at));
  } else {
    out.append(authority);
  }
  rest.remove_prefix(authority_end);
  const auto q = rest.find('?');
  if (q == std::string_view::npos) {
    out.append(rest);
    return;
  }
  out.append(rest.substr(0, q + 1));
  rest.remove_prefix(q + 1);
  const auto hash = rest.find('#');
  redact_query(rest.substr(0, hash), out);
  if (hash != std::string_view::npos) out.append(rest.substr(hash));
}

}  // namespace

bool is_sensitive_name(std::string_view name) noexcept {
  char buf[64];
  std::size_t n = 0;
  for (char c : name) {
    if (c == '-' || c == '_' || c == '.') continue;
    if (n == sizeof buf) return true;  // an unusually long name: err on the side of hiding
    buf[n++] = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  const std::string_view norm(buf, n);
  if (norm.empty()) return false;
  if (std::find(k_sensitive_names.begin(), k_sensitive_names.end(), norm) != k_sensitive_names.end()) return true;
  return std::any_of(k_sensitive_parts.begin(), k_sensitive_parts.end(),
                     [&](std::string_view p) { return norm.find(p) != std::string_view::npos; });
}

std::string redact_url(std::string_view url) {
  if (url.find("://") == std::string_view::npos) return redact_text(url);
  std::string out;
  out.reserve(url.size());
  redact_one_url(url, out);
  return out;
}

std::string redact_text(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t i = 0;
  while (i < text.size()) {
    // A URL: a scheme (letters first) right before "://".
    if (text.compare(i, 3, "://") == 0) {
      std::size_t start = i;
      while (start > 0 && scheme_char(text[start - 1])) --start;
      std::size_t end = i + 3;
      while (end < text.size() && !url_end(text[end])) ++end;
      out.resize(out.size() - (i - start));  // the scheme was copied already
      redact_one_url(text.substr(start, end - start), out);
      i = end;
      continue;
    }
    // name=value with a sensitive name (a conninfo's password=..., a query quoted without its URL).
    if (name_char(text[i]) && (i == 0 || !name_char(text[i - 1]))) {
      std::size_t end = i;
      while (end < text.size() && name_char(text[end])) ++end;
      if (end < text.size() && text[end] == '=' && is_sensitive_name(text.substr(i, end - i))) {
        std::size_t value_end = end + 1;
        while (value_end < text.size() && !url_end(text[value_end]) && text[value_end] != '&' &&
               text[value_end] != ';' && text[value_end] != ',')
          ++value_end;
        out.append(text.substr(i, end + 1 - i));
        out.append(k_redacted);
        i = value_end;
        continue;
      }
      out.append(text.substr(i, end - i));
      i = end;
      continue;
    }
    out += text[i++];
  }
  return out;
}

}  // namespace fanout
