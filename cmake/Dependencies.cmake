# Every dependency is a Debian 12 package installed by scripts/bootstrap; nothing is downloaded.
find_package(Threads REQUIRED)
find_package(fmt REQUIRED)
find_package(spdlog REQUIRED)
find_package(RapidJSON REQUIRED)
find_package(simdjson REQUIRED)
find_package(xxHash QUIET)
find_package(PkgConfig REQUIRED)
pkg_check_modules(XXHASH REQUIRED IMPORTED_TARGET libxxhash)
# libnats-dev: the NATS C client (private to services). Its CMake config names a libnats_static.a
# that Debian does not ship, so it is found through pkg-config.
pkg_check_modules(NATS REQUIRED IMPORTED_TARGET libnats)
find_package(RocksDB REQUIRED)
find_package(SQLite3 REQUIRED)
find_package(Boost 1.74 REQUIRED)
find_package(OpenSSL REQUIRED)  # tls:// and https:// (services/transport/tls*)
find_package(tomlplusplus REQUIRED)
find_package(CLI11 REQUIRED)
find_package(benchmark REQUIRED)
if(SHARDKIT_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()

# RapidJSON's Debian config exports only variables; give it a target.
if(NOT TARGET RapidJSON::RapidJSON)
  add_library(RapidJSON::RapidJSON INTERFACE IMPORTED)
  target_include_directories(RapidJSON::RapidJSON INTERFACE ${RAPIDJSON_INCLUDE_DIRS})
  target_compile_definitions(RapidJSON::RapidJSON INTERFACE RAPIDJSON_HAS_STDSTRING=1 RAPIDJSON_SSE2=1)
endif()
