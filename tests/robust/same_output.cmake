# Runs two builds of one test program and fails unless both succeed with the same output
# (GoogleTest's timings removed).
#   cmake -DPLAIN=<exe> -DPLUGIN=<exe> -P same_output.cmake
foreach(exe PLAIN PLUGIN)
  execute_process(COMMAND "${${exe}}" OUTPUT_VARIABLE out_${exe} ERROR_VARIABLE err_${exe}
                  RESULT_VARIABLE rc_${exe})
  string(REGEX REPLACE " \\([0-9]+ ms[^)]*\\)" "" out_${exe} "${out_${exe}}")
endforeach()
if(NOT rc_PLAIN EQUAL 0)
  message(FATAL_ERROR "the plain build fails (${rc_PLAIN}):\n${out_PLAIN}${err_PLAIN}")
endif()
if(NOT rc_PLUGIN EQUAL rc_PLAIN OR NOT out_PLUGIN STREQUAL out_PLAIN)
  message(FATAL_ERROR "the build with the plugin behaves differently (exit ${rc_PLUGIN}):\n"
          "${out_PLUGIN}${err_PLUGIN}\n--- without the plugin:\n${out_PLAIN}")
endif()
string(REGEX MATCH "\\[  PASSED  \\] [0-9]+ tests" passed "${out_PLUGIN}")
message("same output with and without the plugin: ${passed}")
