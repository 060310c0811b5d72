#include <doctest/doctest.h>

#include <fanout/detail/json.hpp>

using namespace fanout::detail;

TEST_CASE("json_string escapes quotes, backslash and newline") {
  CHECK(json_string("a\"b\\c\n") == R"("a\"b\\c\n")");
  CHECK(json_string("") == R"("")");
}

TEST_CASE("json_string escapes every control character and DEL") {
  CHECK(json_string("\r\t") == R"("\r\t")");
  CHECK(json_string(std::string_view("\0\x01\x1f\x7f", 4)) == R"("\u0000\u0001\u001f\u007f")");
  CHECK(json_string("\b\f") == R"("\u0008\u000c")");
}

TEST_CASE("json_string passes UTF-8 and printable ASCII through unchanged") {
  CHECK(json_string("héllo €𝄞") == "\"héllo €𝄞\"");
  CHECK(json_string("/ <tag> 'x'") == R"("/ <tag> 'x'")");
}

TEST_CASE("append_json_string appends") {
  std::string out = "[";
  append_json_string(out, "a");
  out += ',';
  append_json_string(out, "\"");
  CHECK(out == R"(["a","\"")");
}

TEST_CASE("append_json_value embeds objects and arrays, quotes anything else") {
  std::string out;
  append_json_value(out, R"({"a":1})");
  CHECK(out == R"({"a":1})");
  out.clear();
  append_json_value(out, " \n[1,2]");
  CHECK(out == " \n[1,2]");
  out.clear();
  append_json_value(out, "42");
  CHECK(out == R"("42")");
  out.clear();
  append_json_value(out, "say \"hi\"");
  CHECK(out == R"("say \"hi\"")");
  out.clear();
  append_json_value(out, "");
  CHECK(out == R"("")");
}
