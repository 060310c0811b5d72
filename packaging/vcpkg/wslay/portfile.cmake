# wslay 1.1.1 as an overlay port: upstream vcpkg has no wslay port (fanout depends on it).
# wslay builds with its own CMake: WSLAY_STATIC / WSLAY_SHARED pick the library kind, the
# targets are `wslay` (static) and `wslay_shared` (shared), installed with wslay-config.cmake.
#
# SHA512 of https://github.com/tatsuhiro-t/wslay/archive/release-1.1.1.tar.gz: GitHub could not be
# reached from where this port was written (docs/install.md), so 0 is vcpkg's documented
# placeholder: the first install stops with "unexpected hash" and prints the actual value, which
# goes here. A candidate, `git archive --format=tar.gz --prefix=wslay-release-1.1.1/ release-1.1.1`
# of the tag (git 2.39), unverified against GitHub's download:
#   adb6f72ef007dee6577239ad247bcc7a3c513f9481d1f7480318ca0d0e8a812f1121c3bba7c6d2ed015c6912ddfa93ec0c59383b88a18a77842b126bd64659ae
set(WSLAY_SHA512 0)

vcpkg_from_github(
  OUT_SOURCE_PATH SOURCE_PATH
  REPO tatsuhiro-t/wslay
  REF "release-${VERSION}"
  SHA512 ${WSLAY_SHA512}
  HEAD_REF master
)

# lib/CMakeLists.txt adds -Werror to every build; a newer compiler's new warning must not fail a
# user's install.
vcpkg_replace_string("${SOURCE_PATH}/lib/CMakeLists.txt" "-Werror " "")

string(COMPARE EQUAL "${VCPKG_LIBRARY_LINKAGE}" "static" WSLAY_STATIC)
string(COMPARE EQUAL "${VCPKG_LIBRARY_LINKAGE}" "dynamic" WSLAY_SHARED)

vcpkg_cmake_configure(
  SOURCE_PATH "${SOURCE_PATH}"
  OPTIONS
    -DWSLAY_STATIC=${WSLAY_STATIC}
    -DWSLAY_SHARED=${WSLAY_SHARED}
    -DWSLAY_EXAMPLES=OFF
    -DWSLAY_TESTS=OFF
)
vcpkg_cmake_install()
vcpkg_cmake_config_fixup(CONFIG_PATH lib/cmake/wslay)
vcpkg_copy_pdbs()

file(REMOVE_RECURSE "${CURRENT_PACKAGES_DIR}/debug/include")
file(INSTALL "${CMAKE_CURRENT_LIST_DIR}/usage" DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")
vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/COPYING")
