# An instrumented object must be rebuilt when a runtime header that its rewritten code includes
# changes (cmake/MmsbInstrument.cmake): the build graph lists them among the object's inputs.
#   cmake -DNINJA=<ninja> -DBUILD=<build dir> -DOBJECT=<object, relative to BUILD> -P object_depends.cmake
execute_process(COMMAND ${NINJA} -C ${BUILD} -t query ${OBJECT}
                OUTPUT_VARIABLE graph RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "ninja -t query ${OBJECT} failed (${rc}):\n${graph}")
endif()
foreach(header held_marks.h instrument.h barrier.h mmsb-plugin.so)
  if(NOT graph MATCHES "[/\\]${header}")
    message(FATAL_ERROR "${OBJECT} does not depend on ${header}: a change to it would leave "
                        "the object's instrumentation stale. Its inputs:\n${graph}")
  endif()
endforeach()
message(STATUS "${OBJECT} depends on the plugin and the runtime headers rewritten code includes")
