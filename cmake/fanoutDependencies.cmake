# Every dependency is a Debian 12 package; see README.md for the apt-get line.
find_package(Threads REQUIRED)
find_package(OpenSSL REQUIRED)
find_package(wslay CONFIG REQUIRED)        # libwslay-dev
find_package(fmt CONFIG REQUIRED)          # libfmt-dev
find_package(simdjson CONFIG REQUIRED)     # libsimdjson-dev
find_package(ZLIB REQUIRED)                # zlib1g-dev: permessage-deflate, gzip feeds
if(FANOUT_WITH_POSTGRES)
  find_package(PostgreSQL REQUIRED)        # libpq-dev: the PostgreSQL sink
endif()

# libasio-dev ships headers only, no CMake config.
find_path(ASIO_INCLUDE_DIR asio.hpp REQUIRED)
if(NOT TARGET asio::asio)
  add_library(asio::asio INTERFACE IMPORTED)
  set_target_properties(asio::asio PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${ASIO_INCLUDE_DIR}")
endif()

# libhttp-parser-dev (nodejs/http-parser) ships no CMake config either.
find_path(HTTP_PARSER_INCLUDE_DIR http_parser.h REQUIRED)
find_library(HTTP_PARSER_LIBRARY http_parser REQUIRED)
if(NOT TARGET fanout_http_parser)
  add_library(fanout_http_parser UNKNOWN IMPORTED)
  set_target_properties(fanout_http_parser PROPERTIES
    IMPORTED_LOCATION "${HTTP_PARSER_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${HTTP_PARSER_INCLUDE_DIR}")
endif()

# libhiredis-dev (0.14) ships no imported target. Optional: RedisBus and RedisLease (FANOUT_WITH_REDIS).
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
