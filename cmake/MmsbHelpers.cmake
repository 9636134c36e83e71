# Build helpers shared by every component.

# Flags go to C and C++ only: CUDA sources are compiled by nvcc, which takes its own.
function(mmsb_setup_warnings_and_sanitizers)
  set(c_cxx "$<COMPILE_LANGUAGE:C,CXX>")
  add_compile_options("$<${c_cxx}:-Wall;-Wextra;-Wno-unused-parameter>")
  if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    # Designated initialisers that leave later fields defaulted are the point of option structs.
    add_compile_options("$<${c_cxx}:-Wthread-safety;-Wno-missing-designated-field-initializers>")
  endif()
  if(MMSB_SANITIZE STREQUAL "address")
    add_compile_options("$<${c_cxx}:-fsanitize=address,undefined;-fno-omit-frame-pointer;-fno-sanitize-recover=undefined>")
    add_link_options(-fsanitize=address,undefined)
  elseif(MMSB_SANITIZE STREQUAL "thread")
    add_compile_options("$<${c_cxx}:-fsanitize=thread;-fno-omit-frame-pointer>")
    add_link_options(-fsanitize=thread)
  elseif(NOT MMSB_SANITIZE STREQUAL "")
    message(FATAL_ERROR "MMSB_SANITIZE must be '', 'address' or 'thread', not '${MMSB_SANITIZE}'")
  endif()
endfunction()

# mmsb_add_test(NAME name SOURCES a.cc ... LIBS lib ... [LABELS unit slow ...] [PREFIX p])
# Builds a GoogleTest binary and registers each test case with ctest under the given labels
# (named Suite.Case, or pSuite.Case with a PREFIX).
function(mmsb_add_test)
  cmake_parse_arguments(T "" "NAME;PREFIX" "SOURCES;LIBS;LABELS" ${ARGN})
  if(NOT T_LABELS)
    set(T_LABELS unit)
  endif()
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_LIBS} GTest::gtest GTest::gmock GTest::gtest_main)
  # Helpers every test may use (tests/common/temp_dir.h).
  target_include_directories(${T_NAME} PRIVATE ${PROJECT_SOURCE_DIR}/tests/common)
  include(GoogleTest)
  # A GTEST_SKIP (e.g. "skipped: no CUDA device") shows as skipped in ctest, not passed.
  gtest_discover_tests(${T_NAME} TEST_PREFIX "${T_PREFIX}" PROPERTIES LABELS "${T_LABELS}" SKIP_REGULAR_EXPRESSION "\\[  SKIPPED \\]"
                       DISCOVERY_TIMEOUT 60)
endfunction()
