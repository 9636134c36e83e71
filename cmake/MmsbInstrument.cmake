# mmsb_instrument(<target> [IR_GENERATION_PER_BUILD] [REPLICATE])
#
# Compiles <target>'s C++ sources with the MMSB Clang plugin and links the MMSB runtime.
#   - The C++ compiler must be clang 19 (the plugin is built for it; loading it into another
#     clang crashes). Anything else stops configuration with a message saying how to fix it.
#   - IR_GENERATION_PER_BUILD opens a new IR-store generation before each build of <target>
#     (`mmsb ir new-generation`), so `mmsb ir builds` lists one generation per build.
#   - REPLICATE also links mmsb::replication (NATS JetStream, docs/Replication.md) and defines
#     MMSB_WITH_REPLICATION=1; the program calls mmsb::Replicate() or mmsb::ReplicateFromEnv()
#     (MMSB_REPLICATE=nats://host:port/stream). Without it the program never links libnats.
# Works from the installed package (find_package(mmsb)) and inside the MMSB build tree.
include("${CMAKE_CURRENT_LIST_DIR}/MmsbIr.cmake")
function(mmsb_instrument target)
  cmake_parse_arguments(MI "IR_GENERATION_PER_BUILD;REPLICATE" "" "" ${ARGN})
  if(NOT TARGET ${target})
    message(FATAL_ERROR "mmsb_instrument: '${target}' is not a target")
  endif()
  if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang" OR NOT CMAKE_CXX_COMPILER_VERSION MATCHES "^19\\.")
    message(FATAL_ERROR
      "mmsb_instrument(${target}): the MMSB plugin needs clang 19, but the C++ compiler is "
      "${CMAKE_CXX_COMPILER_ID} ${CMAKE_CXX_COMPILER_VERSION} (${CMAKE_CXX_COMPILER}). "
      "Configure with -DCMAKE_CXX_COMPILER=clang++-19 (on Debian 12 `clang++` is clang 14, "
      "which crashes when it loads a plugin built for clang 19).")
  endif()
  if(TARGET mmsb-plugin)
    set(plugin "${MMSB_PLUGIN_FILE}")
    add_dependencies(${target} mmsb-plugin)
  elseif(TARGET mmsb::plugin)
    get_target_property(plugin mmsb::plugin IMPORTED_LOCATION)
  else()
    message(FATAL_ERROR "mmsb_instrument(${target}): the MMSB plugin was not found "
      "(this MMSB was built without MMSB_WITH_PLUGIN, or the install is incomplete)")
  endif()
  target_compile_options(${target} PRIVATE "$<$<COMPILE_LANGUAGE:CXX>:-fplugin=${plugin}>")
  # Recompile when the plugin changes, or a runtime header that rewritten code includes: the
  # rewrite adds mmsb/held_marks.h (the barrier, the instrumentation entry points) to the second
  # pass only, so the dependency file, written by the first pass as plain clang writes it, does
  # not name them, and an object would keep an old barrier after the runtime changed.
  if(TARGET mmsb-plugin)  # MMSB's own tree (or add_subdirectory(mmsb)): next to this file
    get_filename_component(rt_include "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/../runtime/include"
                           ABSOLUTE)
  else()
    set(rt_include "${MMSB_INCLUDE_DIR}")
  endif()
  set(deps "${plugin}")
  foreach(h held_marks.h instrument.h barrier.h provenance.h types.h)
    if(EXISTS "${rt_include}/mmsb/${h}")
      list(APPEND deps "${rt_include}/mmsb/${h}")
    endif()
  endforeach()
  get_target_property(srcs ${target} SOURCES)
  if(srcs)
    set_property(SOURCE ${srcs} TARGET_DIRECTORY ${target} APPEND PROPERTY OBJECT_DEPENDS "${deps}")
  endif()
  # target_precompile_headers: the PCH is compiled with the plugin too (it holds the rewritten
  # headers), from a source CMake generates at CMakeFiles/<target>.dir[/<config>]/cmake_pch.hxx.cxx.
  # A PCH left from an older plugin would hand its consumers stale instrumentation.
  get_target_property(bindir ${target} BINARY_DIR)
  set(pch_dirs "${bindir}/CMakeFiles/${target}.dir")
  foreach(config IN LISTS CMAKE_CONFIGURATION_TYPES)
    list(APPEND pch_dirs "${bindir}/CMakeFiles/${target}.dir/${config}")
  endforeach()
  foreach(dir IN LISTS pch_dirs)
    set_property(SOURCE "${dir}/cmake_pch.hxx.cxx" TARGET_DIRECTORY ${target} APPEND
                 PROPERTY OBJECT_DEPENDS "${deps}")
  endforeach()
  target_link_libraries(${target} PRIVATE mmsb::mmsb)
  target_compile_features(${target} PRIVATE cxx_std_20)
  if(MI_REPLICATE)
    if(NOT TARGET mmsb::replication)
      message(FATAL_ERROR "mmsb_instrument(${target} REPLICATE): this MMSB was built without "
        "replication (install libnats-dev and configure MMSB with -DMMSB_WITH_REPLICATION=ON)")
    endif()
    target_link_libraries(${target} PRIVATE mmsb::replication)
    target_compile_definitions(${target} PRIVATE MMSB_WITH_REPLICATION=1)
  endif()
  if(MI_IR_GENERATION_PER_BUILD)
    # One shared step for every instrumented target (cmake/MmsbIr.cmake), so one build is one
    # generation however many targets it compiles.
    mmsb_ir_generation_step(${target})
  endif()
endfunction()
