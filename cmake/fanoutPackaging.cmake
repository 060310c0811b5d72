# CPack: the Debian packages (`cpack -G DEB` in a build configured with -DCMAKE_INSTALL_PREFIX=/usr
# and FANOUT_INSTALL=ON; tests/packaging/test_deb.sh does it). Two packages from the install components:
#   fanout-dev    headers, libfanout (static archive, or the .so with its namelink), CMake package, fanout.pc
#   fanout-relay  /usr/bin/fanout-relay, its systemd unit, /etc/fanout/relay.toml (a conffile), a `fanout` user
# A shared build adds libfanout<soversion> (component lib) for the runtime file, as Debian does.
if(NOT FANOUT_INSTALL)
  return()
endif()

# Where the relay's system files go. Under the /usr prefix they are the system's /etc and the
# unit directory; under any other prefix they stay inside it, so `cmake --install --prefix` never
# writes outside the tree it was given.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(_fanout_confdir_default /etc/fanout)
else()
  set(_fanout_confdir_default ${CMAKE_INSTALL_SYSCONFDIR}/fanout)
endif()
set(FANOUT_RELAY_CONFDIR ${_fanout_confdir_default} CACHE STRING "Where the relay's packaged relay.toml goes")
set(FANOUT_SYSTEMD_UNITDIR lib/systemd/system CACHE STRING "Where fanout-relay.service goes (relative: under the prefix)")
if(IS_ABSOLUTE "${FANOUT_RELAY_CONFDIR}")
  set(FANOUT_RELAY_CONFIG_FILE ${FANOUT_RELAY_CONFDIR}/relay.toml)
else()
  set(FANOUT_RELAY_CONFIG_FILE ${CMAKE_INSTALL_PREFIX}/${FANOUT_RELAY_CONFDIR}/relay.toml)
endif()
get_filename_component(FANOUT_RELAY_CONFDIR_ABS ${FANOUT_RELAY_CONFIG_FILE} DIRECTORY)
# Package managers that are not the system's (vcpkg, conan) install the binary only.
option(FANOUT_INSTALL_SERVICE "Install the relay's systemd unit and its /etc/fanout/relay.toml" ON)
if(TARGET fanout-relay AND FANOUT_INSTALL_SERVICE)
  configure_file(packaging/debian/fanout-relay.service.in ${PROJECT_BINARY_DIR}/packaging/fanout-relay.service @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/packaging/fanout-relay.service DESTINATION ${FANOUT_SYSTEMD_UNITDIR}
          COMPONENT relay)
  install(FILES packaging/debian/relay.toml DESTINATION ${FANOUT_RELAY_CONFDIR} COMPONENT relay)
endif()

set(CPACK_PACKAGE_NAME fanout)
set(CPACK_PACKAGE_VENDOR "fanout")
set(CPACK_PACKAGE_CONTACT "fanout maintainers <fanout@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "fans real-time messages out to many WebSocket clients by topic")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
# Absolute destinations (/etc/fanout) go into the package's tree, not into the build machine's /etc.
set(CPACK_SET_DESTDIR ON)
set(CPACK_GENERATOR DEB)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)  # dpkg-shlibdeps: libfmt9, libssl3, ... from the binaries
set(CPACK_DEBIAN_PACKAGE_GENERATE_SHLIBS ON)
# The relay ships without its debug info (RelWithDebInfo: 48 MB, stripped: under 2 MB); strip
# runs on the executable only, as it would empty a static archive's symbol table.
set(CPACK_STRIP_FILES ${CMAKE_INSTALL_BINDIR}/fanout-relay)

get_target_property(_fanout_pkg_type fanout TYPE)
set(CPACK_COMPONENTS_ALL dev)
if(_fanout_pkg_type STREQUAL "SHARED_LIBRARY")
  list(APPEND CPACK_COMPONENTS_ALL lib)
  set(CPACK_DEBIAN_LIB_PACKAGE_NAME libfanout${_fanout_soversion})
  set(CPACK_DEBIAN_LIB_PACKAGE_SECTION libs)
endif()
if(TARGET fanout-relay)
  list(APPEND CPACK_COMPONENTS_ALL relay)
endif()

# fanout-dev: what a program built against it needs from the system: the public dependencies'
# headers, and for the static archive its private dependencies' too (fanoutConfig.cmake finds them).
set(_fanout_dev_depends "libasio-dev, libssl-dev")
if(_fanout_pkg_type STREQUAL "STATIC_LIBRARY")
  string(APPEND _fanout_dev_depends ", libfmt-dev, libsimdjson-dev, libwslay-dev, libhttp-parser-dev, zlib1g-dev")
  if(FANOUT_WITH_POSTGRES)
    string(APPEND _fanout_dev_depends ", libpq-dev")
  endif()
  if(FANOUT_WITH_REDIS)
    string(APPEND _fanout_dev_depends ", libhiredis-dev")
  endif()
else()
  string(APPEND _fanout_dev_depends ", libfanout${_fanout_soversion} (= ${PROJECT_VERSION})")
endif()
set(CPACK_DEBIAN_DEV_PACKAGE_NAME fanout-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "${_fanout_dev_depends}")
set(CPACK_COMPONENT_DEV_DESCRIPTION "fanout: C++20 library to fan real-time messages out to WebSocket clients (development files)
 Headers, the library, its CMake package (find_package(fanout)) and fanout.pc.")

set(CPACK_DEBIAN_RELAY_PACKAGE_NAME fanout-relay)
set(CPACK_DEBIAN_RELAY_PACKAGE_SECTION net)
set(CPACK_DEBIAN_RELAY_PACKAGE_DEPENDS "adduser")
set(CPACK_COMPONENT_RELAY_DESCRIPTION "fanout-relay: relays upstream WebSocket feeds to many downstream clients by topic
 A systemd service (fanout-relay.service) running as the `fanout` system user with
 the configuration in /etc/fanout/relay.toml.")
# Maintainer scripts and the conffile list; dpkg keeps an edited relay.toml on upgrade.
file(WRITE ${PROJECT_BINARY_DIR}/packaging/conffiles "${FANOUT_RELAY_CONFIG_FILE}\n")
foreach(script postinst prerm postrm)
  configure_file(packaging/debian/${script} ${PROJECT_BINARY_DIR}/packaging/${script} @ONLY
                 FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
endforeach()
set(CPACK_DEBIAN_RELAY_PACKAGE_CONTROL_EXTRA
    ${PROJECT_BINARY_DIR}/packaging/conffiles ${PROJECT_BINARY_DIR}/packaging/postinst
    ${PROJECT_BINARY_DIR}/packaging/prerm ${PROJECT_BINARY_DIR}/packaging/postrm)
set(CPACK_DEBIAN_RELAY_PACKAGE_CONTROL_STRICT_PERMISSION ON)

include(CPack)
