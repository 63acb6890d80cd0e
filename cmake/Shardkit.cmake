# shardkit_library(NAME SOURCES... DEPS ...): one library target per folder, exported as
# shardkit::NAME, with public headers under <folder>/include/shardkit/<folder>/.
function(shardkit_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(shardkit_${name} ${ARG_SOURCES})
  add_library(shardkit::${name} ALIAS shardkit_${name})
  set_target_properties(shardkit_${name} PROPERTIES EXPORT_NAME ${name} OUTPUT_NAME shardkit_${name}
                                                  POSITION_INDEPENDENT_CODE ON)
  target_include_directories(shardkit_${name} PUBLIC
    $<BUILD_INTERFACE:${CMAKE_CURRENT_SOURCE_DIR}/include>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_compile_options(shardkit_${name} PRIVATE -Wall -Wextra -Wno-unused-parameter)
  # Consumers of the installed package compile the public headers as C++20 too.
  target_compile_features(shardkit_${name} PUBLIC cxx_std_20)
  target_link_libraries(shardkit_${name} PUBLIC ${ARG_PUBLIC_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  set_property(GLOBAL APPEND PROPERTY SHARDKIT_LIBRARIES shardkit_${name})
  if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/include/shardkit)
    install(DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/include/shardkit DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  endif()
endfunction()

# shardkit_test(NAME SOURCES... DEPS ...): one GoogleTest binary, registered with CTest.
function(shardkit_test name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_compile_options(${name} PRIVATE -Wall -Wextra -Wno-unused-parameter)
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gmock GTest::gtest GTest::gtest_main)
  include(GoogleTest)
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60)
  # Labels are set after discovery, from the list of tests it made: passed through
  # gtest_discover_tests(PROPERTIES), a list of labels loses all but its first.
  if(ARG_LABELS)
    set(label_file "${CMAKE_CURRENT_BINARY_DIR}/${name}_labels.cmake")
    file(WRITE "${label_file}"
         "if(DEFINED ${name}_TESTS)\n"
         "  set_tests_properties(\${${name}_TESTS} PROPERTIES LABELS \"${ARG_LABELS}\")\n"
         "endif()\n")
    set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES "${label_file}")
  endif()
endfunction()
