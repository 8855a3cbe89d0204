# libFuzzer targets (tests/fuzz/): a CMake project of their own, built with clang as an
# ExternalProject (the main build uses g++), from the pure codec sources only. Each
# target is registered twice under the ctest label "fuzz":
#   "fuzz-corpus: <name>"  replays the committed seeds once (regression);
#   "fuzz: <name>"         fuzzes for WSGATE_FUZZ_SECONDS on a temporary copy of them.
# Longer runs: scripts/fuzz.sh. docs/testing.md has the details.
option(WSGATE_FUZZ "Build the libFuzzer targets with clang and run them under ctest" ON)
set(WSGATE_FUZZ_SECONDS 15 CACHE STRING "Seconds each fuzz target runs under ctest")

if(WSGATE_TESTS AND WSGATE_FUZZ)
  find_program(WSGATE_CLANGXX NAMES clang++ clang++-14)
  if(NOT WSGATE_CLANGXX)
    message(WARNING "clang++ not found: fuzz targets not built (scripts/install-deps.sh test)")
    return()
  endif()
  include(ExternalProject)
  set(WSGATE_FUZZ_DIR ${CMAKE_BINARY_DIR}/fuzz)
  file(GLOB WSGATE_FUZZ_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/fuzz/*_fuzz.cc)
  set(WSGATE_FUZZ_BINARIES)
  foreach(source IN LISTS WSGATE_FUZZ_SOURCES)
    get_filename_component(target ${source} NAME_WE)
    list(APPEND WSGATE_FUZZ_BINARIES ${WSGATE_FUZZ_DIR}/${target})
  endforeach()
  # As many compile jobs as cores: ninja tends to start this project last, after the
  # main build's own jobs are done (when it does run beside them, the cores are shared).
  cmake_host_system_information(RESULT WSGATE_FUZZ_JOBS QUERY NUMBER_OF_LOGICAL_CORES)
  ExternalProject_Add(wsgate_fuzz
    SOURCE_DIR ${CMAKE_SOURCE_DIR}/tests/fuzz
    BINARY_DIR ${WSGATE_FUZZ_DIR}
    # -O1 and line tables: libFuzzer's advice, and a third less compile time than -O2 -g.
    CMAKE_ARGS -DCMAKE_CXX_COMPILER=${WSGATE_CLANGXX} -DCMAKE_BUILD_TYPE=RelWithDebInfo
               "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -gline-tables-only -DNDEBUG"
               -DCMAKE_CXX_COMPILER_LAUNCHER=${CMAKE_CXX_COMPILER_LAUNCHER}
    BUILD_COMMAND ${CMAKE_COMMAND} --build ${WSGATE_FUZZ_DIR} -j ${WSGATE_FUZZ_JOBS}
    BUILD_ALWAYS ON
    BUILD_BYPRODUCTS ${WSGATE_FUZZ_BINARIES}
    INSTALL_COMMAND "")

  foreach(source IN LISTS WSGATE_FUZZ_SOURCES)
    get_filename_component(target ${source} NAME_WE)
    string(REGEX REPLACE "_fuzz$" "" name ${target})
    set(run ${CMAKE_SOURCE_DIR}/tests/fuzz/run_fuzzer.sh ${WSGATE_FUZZ_DIR}/${target}
        ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/${name})
    add_test(NAME "fuzz-corpus: ${name}" COMMAND ${run} 0)
    add_test(NAME "fuzz: ${name}" COMMAND ${run} ${WSGATE_FUZZ_SECONDS}
             ${CMAKE_BINARY_DIR}/fuzz-artifacts)
    set_tests_properties("fuzz-corpus: ${name}" "fuzz: ${name}" PROPERTIES LABELS fuzz)
    set_tests_properties("fuzz: ${name}" PROPERTIES TIMEOUT
                         180 ENVIRONMENT "UBSAN_OPTIONS=print_stacktrace=1")
  endforeach()
endif()
