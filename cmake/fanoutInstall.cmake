include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS fanout EXPORT fanoutTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY include/fanout DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT fanoutTargets NAMESPACE fanout:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/fanout)
# The static library's private dependencies must be found again by consumers.
install(FILES cmake/fanoutDependencies.cmake DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/fanout)
configure_package_config_file(cmake/fanoutConfig.cmake.in ${CMAKE_CURRENT_BINARY_DIR}/fanoutConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/fanout)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/fanoutConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/fanoutConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/fanoutConfigVersion.cmake
  DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/fanout)
