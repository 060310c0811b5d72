# fanout's vcpkg port, used as an overlay from the repository it lives in:
#   vcpkg install fanout[redis,relay] --overlay-ports=<repo>/packaging/vcpkg
# It builds the checkout that contains it, with the project's own CMake: what this port installs is
# what the project's CI installs and tests (find_package(fanout), fanout.pc). For a registry, replace
# SOURCE_PATH with vcpkg_from_github(OUT_SOURCE_PATH SOURCE_PATH REPO <owner>/fanout REF "v${VERSION}"
# SHA512 <of the release tarball> HEAD_REF main).
get_filename_component(SOURCE_PATH "${CMAKE_CURRENT_LIST_DIR}/../../.." ABSOLUTE)
if(NOT EXISTS "${SOURCE_PATH}/include/fanout/hub.hpp")
  message(FATAL_ERROR "the fanout port builds the repository around it; ${SOURCE_PATH} is not one")
endif()

vcpkg_check_features(OUT_FEATURE_OPTIONS FEATURE_OPTIONS
  FEATURES
    tls      FANOUT_WITH_TLS
    redis    FANOUT_WITH_REDIS
    postgres FANOUT_WITH_POSTGRES
    relay    FANOUT_BUILD_RELAY
)

# BUILD_SHARED_LIBS follows the triplet's VCPKG_LIBRARY_LINKAGE (vcpkg_cmake_configure sets it).
vcpkg_cmake_configure(
  SOURCE_PATH "${SOURCE_PATH}"
  OPTIONS
    ${FEATURE_OPTIONS}
    -DFANOUT_INSTALL=ON
    -DFANOUT_INSTALL_SERVICE=OFF
    -DFANOUT_BUILD_TESTS=OFF
    -DFANOUT_BUILD_EXAMPLES=OFF
    -DFANOUT_CMAKE_DIR=share/fanout
)
vcpkg_cmake_install()
vcpkg_cmake_config_fixup(CONFIG_PATH share/fanout)
vcpkg_fixup_pkgconfig()

if("relay" IN_LIST FEATURES)
  vcpkg_copy_tools(TOOL_NAMES fanout-relay AUTO_CLEAN)
endif()

file(REMOVE_RECURSE
  "${CURRENT_PACKAGES_DIR}/debug/include"
  "${CURRENT_PACKAGES_DIR}/debug/share")

file(INSTALL "${CMAKE_CURRENT_LIST_DIR}/usage" DESTINATION "${CURRENT_PACKAGES_DIR}/share/${PORT}")
# The project has no LICENSE file yet (docs/install.md); README.md stands in until it has one.
if(EXISTS "${SOURCE_PATH}/LICENSE")
  vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/LICENSE")
else()
  vcpkg_install_copyright(FILE_LIST "${SOURCE_PATH}/README.md")
endif()
