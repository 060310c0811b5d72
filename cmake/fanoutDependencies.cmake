# Finds what the library needs while it is built (the installed package finds its own through
# fanoutConfig.cmake). Every dependency is a Debian 12 package (see README.md for the apt-get line)
# and a vcpkg port. A target the parent project already defines (asio::asio, fmt::fmt, ...) is used
# as it is: fanout then builds beside a parent that vendors them.
find_package(Threads REQUIRED)
find_package(OpenSSL REQUIRED)               # libssl-dev: the handshake's SHA-1, wss
find_package(ZLIB REQUIRED)                  # zlib1g-dev: permessage-deflate, gzip feeds
if(NOT TARGET fmt::fmt)
  find_package(fmt CONFIG REQUIRED)          # libfmt-dev
endif()
if(NOT TARGET simdjson::simdjson)
  find_package(simdjson CONFIG REQUIRED)     # libsimdjson-dev
endif()
# wslay's own CMake names its static library `wslay` and its shared one `wslay_shared` (Debian's
# package calls its shared library `wslay`).
if(NOT TARGET wslay AND NOT TARGET wslay_shared)
  find_package(wslay CONFIG REQUIRED)        # libwslay-dev
endif()
if(TARGET wslay)
  set(FANOUT_WSLAY_TARGET wslay)
else()
  set(FANOUT_WSLAY_TARGET wslay_shared)
endif()

# asio is header-only; libasio-dev ships no CMake config (vcpkg's port does, with asio::asio).
if(NOT TARGET asio::asio)
  find_package(asio CONFIG QUIET)
endif()
if(NOT TARGET asio::asio)
  find_path(ASIO_INCLUDE_DIR asio.hpp REQUIRED)
  add_library(asio::asio INTERFACE IMPORTED)
  set_target_properties(asio::asio PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${ASIO_INCLUDE_DIR}")
endif()

# libhttp-parser-dev (nodejs/http-parser) ships no CMake config either.
if(NOT TARGET fanout_http_parser)
  find_path(HTTP_PARSER_INCLUDE_DIR http_parser.h REQUIRED)
  find_library(HTTP_PARSER_LIBRARY http_parser REQUIRED)
  add_library(fanout_http_parser UNKNOWN IMPORTED)
  set_target_properties(fanout_http_parser PROPERTIES
    IMPORTED_LOCATION "${HTTP_PARSER_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${HTTP_PARSER_INCLUDE_DIR}")
endif()

# Optional ones are looked for quietly; the options that need them say what is missing.
# libhiredis-dev (0.14) ships no imported target: RedisBus and RedisLease (FANOUT_WITH_REDIS).
if(NOT DEFINED FANOUT_WITH_REDIS OR FANOUT_WITH_REDIS)
  find_path(HIREDIS_INCLUDE_DIR hiredis/async.h)
  find_library(HIREDIS_LIBRARY hiredis)
  if(HIREDIS_INCLUDE_DIR AND HIREDIS_LIBRARY AND NOT TARGET fanout_hiredis)
    add_library(fanout_hiredis UNKNOWN IMPORTED)
    set_target_properties(fanout_hiredis PROPERTIES
      IMPORTED_LOCATION "${HIREDIS_LIBRARY}"
      INTERFACE_INCLUDE_DIRECTORIES "${HIREDIS_INCLUDE_DIR}")
  endif()
endif()
# libpq-dev: the PostgreSQL sink (FANOUT_WITH_POSTGRES).
if(NOT DEFINED FANOUT_WITH_POSTGRES OR FANOUT_WITH_POSTGRES)
  find_package(PostgreSQL QUIET)
endif()
