# Install rules (FANOUT_INSTALL): the library, its headers, the CMake package and fanout.pc.
# Components: `dev` is the library package (headers, archive or .so, CMake config, .pc) and
# `relay` the binary with its config (examples/relay); a shared library's runtime file is in `lib`.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(FANOUT_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/fanout CACHE STRING
    "Where the CMake package goes, relative to the prefix (vcpkg: share/fanout)")
install(TARGETS fanout EXPORT fanoutTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT lib NAMELINK_COMPONENT dev
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT lib)
install(DIRECTORY include/fanout DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev)
install(FILES ${PROJECT_BINARY_DIR}/include/fanout/version.hpp
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/fanout COMPONENT dev)
install(EXPORT fanoutTargets NAMESPACE fanout:: DESTINATION ${FANOUT_CMAKE_DIR} COMPONENT dev)

# What the installed config needs to know about this build: the features (fanoutConfig.cmake
# finds their dependencies) and whether the library is static (then its private dependencies too).
get_target_property(_fanout_type fanout TYPE)
if(_fanout_type STREQUAL "STATIC_LIBRARY")
  set(FANOUT_STATIC ON)
else()
  set(FANOUT_STATIC OFF)
endif()
configure_package_config_file(cmake/fanoutConfig.cmake.in ${CMAKE_CURRENT_BINARY_DIR}/fanoutConfig.cmake
  INSTALL_DESTINATION ${FANOUT_CMAKE_DIR})
# 0.x: a minor release may break the API, so 0.1 accepts 0.1.z only; from 1.0 on, same major.
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(_fanout_compatibility SameMinorVersion)
else()
  set(_fanout_compatibility SameMajorVersion)
endif()
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/fanoutConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY ${_fanout_compatibility})
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/fanoutConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/fanoutConfigVersion.cmake
  DESTINATION ${FANOUT_CMAKE_DIR} COMPONENT dev)

# fanout.pc: a shared library's dependencies are in its DT_NEEDED, a static archive's are listed
# (Requires.private / Libs.private, for `pkg-config --static`). wslay and http-parser ship no .pc.
# A system install (prefix /usr: the Debian package) names its prefix; any other is relocatable,
# the prefix found from where the .pc file is, so an install moved with `cmake --install --prefix`
# (or a package manager's staging) still points at its own headers and library.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(FANOUT_PC_PREFIX /usr)
else()
  file(RELATIVE_PATH _fanout_pc_up "/root/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/root")
  string(REGEX REPLACE "/$" "" _fanout_pc_up "${_fanout_pc_up}")
  set(FANOUT_PC_PREFIX "\${pcfiledir}/${_fanout_pc_up}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(FANOUT_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
else()
  set(FANOUT_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(FANOUT_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(FANOUT_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
set(FANOUT_PC_REQUIRES "libcrypto")
set(FANOUT_PC_CFLAGS "-DASIO_STANDALONE")
if(FANOUT_WITH_TLS)
  string(APPEND FANOUT_PC_REQUIRES " libssl")
  string(APPEND FANOUT_PC_CFLAGS " -DFANOUT_WITH_TLS=1")
endif()
if(FANOUT_WITH_POSTGRES)
  string(APPEND FANOUT_PC_CFLAGS " -DFANOUT_WITH_POSTGRES=1")
endif()
if(FANOUT_WITH_REDIS)
  string(APPEND FANOUT_PC_CFLAGS " -DFANOUT_WITH_REDIS=1")
endif()
set(FANOUT_PC_REQUIRES_PRIVATE "")
set(FANOUT_PC_LIBS_PRIVATE "")
if(FANOUT_STATIC)
  set(FANOUT_PC_REQUIRES_PRIVATE "fmt simdjson zlib")
  set(FANOUT_PC_LIBS_PRIVATE "-lwslay -lhttp_parser")
  # -lpq, not libpq.pc: Debian's libpq.pc lists PostgreSQL's static internals (-lpgcommon), which
  # `pkg-config --static` would then demand though only the shared libpq is installed.
  if(FANOUT_WITH_POSTGRES)
    string(APPEND FANOUT_PC_LIBS_PRIVATE " -lpq")
  endif()
  if(FANOUT_WITH_REDIS)
    string(APPEND FANOUT_PC_REQUIRES_PRIVATE " hiredis")
  endif()
else()
  string(APPEND FANOUT_PC_CFLAGS " -DFANOUT_SHARED=1")
endif()
configure_file(cmake/fanout.pc.in ${CMAKE_CURRENT_BINARY_DIR}/fanout.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/fanout.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)
