# Fails when a public header (include/fanout/*.hpp) shows a void*, a compiler builtin or a POSIX
# header: those belong in detail/ or src/ (STYLE.md); or defines a top-level class without
# FANOUT_API, which a shared libfanout would then hide (include/fanout/export.hpp). Run by ctest as
# public_headers_clean.
file(GLOB headers ${DIR}/*.hpp)
set(bad "")
foreach(header ${headers})
  file(STRINGS ${header} lines)
  foreach(line IN LISTS lines)
    if(line MATCHES "void[ \t]*\\*|__builtin_|#include <(sys/|unistd\\.h|netinet/|arpa/|fcntl\\.h)")
      get_filename_component(name ${header} NAME)
      string(APPEND bad "  ${name}: ${line}\n")
    endif()
    if(line MATCHES "^(class|struct) [A-Za-z_]+( final)?( : [^;]*)? ?{" AND NOT line MATCHES "FANOUT_API")
      get_filename_component(name ${header} NAME)
      string(APPEND bad "  ${name}: ${line}  (FANOUT_API missing)\n")
    endif()
  endforeach()
endforeach()
if(bad)
  message(FATAL_ERROR "public headers show internals or miss FANOUT_API:\n${bad}")
endif()
