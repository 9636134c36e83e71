# Runs an e2e scenario's plain build (the ground truth) and its instrumented build, and fails
# unless both exit 0 and print the same trace.
#   cmake -DPLAIN=<exe> -DINSTRUMENTED=<exe> -DOUT=<dir> -P compare.cmake
foreach(var PLAIN INSTRUMENTED OUT)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "compare.cmake: -D${var}= is required")
  endif()
endforeach()
file(MAKE_DIRECTORY "${OUT}")
execute_process(COMMAND "${PLAIN}" OUTPUT_FILE "${OUT}/expected.txt" ERROR_VARIABLE plain_err
                RESULT_VARIABLE plain_rc)
execute_process(COMMAND "${INSTRUMENTED}" OUTPUT_FILE "${OUT}/actual.txt" ERROR_VARIABLE inst_err
                RESULT_VARIABLE inst_rc)
message("${inst_err}")
if(NOT plain_rc EQUAL 0)
  message(FATAL_ERROR "the plain build failed (${plain_rc}):\n${plain_err}")
endif()
execute_process(COMMAND "${CMAKE_COMMAND}" -E compare_files "${OUT}/expected.txt" "${OUT}/actual.txt"
                RESULT_VARIABLE differ)
if(differ)
  find_program(DIFF diff)
  if(DIFF)
    execute_process(COMMAND "${DIFF}" -u "${OUT}/expected.txt" "${OUT}/actual.txt"
                    OUTPUT_VARIABLE d)
  else()
    file(READ "${OUT}/actual.txt" d)
  endif()
  message(FATAL_ERROR "committed deltas differ from the ground truth:\n${d}")
endif()
if(NOT inst_rc EQUAL 0)
  message(FATAL_ERROR "the instrumented build failed (${inst_rc})")
endif()
file(STRINGS "${OUT}/expected.txt" lines)
list(LENGTH lines n)
message("e2e: traces match (${n} lines)")
