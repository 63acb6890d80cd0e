# find_package(shardkit) support: every library registered by shardkit_library is exported.
include(CMakePackageConfigHelpers)
get_property(shardkit_libraries GLOBAL PROPERTY SHARDKIT_LIBRARIES)
if(shardkit_libraries)
  install(TARGETS ${shardkit_libraries} EXPORT shardkitTargets
          ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
          LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
          INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  install(EXPORT shardkitTargets NAMESPACE shardkit:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/shardkit)
  configure_package_config_file(${CMAKE_CURRENT_SOURCE_DIR}/cmake/shardkitConfig.cmake.in
    ${CMAKE_CURRENT_BINARY_DIR}/shardkitConfig.cmake INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/shardkit)
  write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/shardkitConfigVersion.cmake
    COMPATIBILITY SameMinorVersion)
  install(FILES ${CMAKE_CURRENT_BINARY_DIR}/shardkitConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/shardkitConfigVersion.cmake
          DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/shardkit)
endif()
