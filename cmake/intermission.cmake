# Helpers shared by every CMakeLists of the project.

# intermission_target(<target>): our warning set, as errors, on one of our own targets.
function(intermission_target target)
  target_compile_options(${target} PRIVATE ${INTERMISSION_WARNINGS})
endfunction()

# intermission_unit_tests(<library> <file>...): one gtest binary per library made of the
# *_test.cpp files that sit beside the code; every test is registered with CTest and
# labelled "unit" (the sanitizer build runs exactly these).
function(intermission_unit_tests library)
  set(target ${library}_unit_tests)
  add_executable(${target} ${ARGN})
  intermission_target(${target})
  target_link_libraries(${target} PRIVATE ${library} intermission_testing
                        GTest::gtest GTest::gmock GTest::gtest_main)
  target_compile_definitions(${target} PRIVATE
      INTERMISSION_FIXTURES_DIR="${INTERMISSION_FIXTURES_DIR}"
      INTERMISSION_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  gtest_discover_tests(${target} PROPERTIES LABELS unit DISCOVERY_TIMEOUT 60)
endfunction()

include(GoogleTest)

# The AWS payload fixtures shared by the workspace; a copy lives in testing/fixtures/aws so a
# clean clone is self-contained.
set(INTERMISSION_FIXTURES_DIR "${PROJECT_SOURCE_DIR}/testing/fixtures/aws")
