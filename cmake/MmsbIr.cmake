# mmsb_ir_generation_step(<target>... [STORE <path>] [LABEL <label>] [MMSB <mmsb executable>])
#
# Makes every build of the given targets one IR-store generation: before any of their sources
# compiles, `mmsb ir new-generation` closes the open generation, so the first capture of the
# build opens a new one and every TU compiled in that build joins it (docs/IRStore.md,
# "Generations"). A build that compiles nothing adds no generation.
#
# One step target (mmsb_ir_generation) serves every target passed to any call: with one step per
# target, a build of several targets would be split over several generations.
#   STORE  the store (default: ${CMAKE_BINARY_DIR}/.mmsb/ir.db, where compiles in this build tree
#          write when MMSB_IR_STORE is unset);
#   LABEL  label for the generation (e.g. a commit id; labels must be unique);
#   MMSB   the mmsb CLI (default: the mmsb-cli target of this build, else the imported mmsb::cli).
function(mmsb_ir_generation_step)
  cmake_parse_arguments(G "" "STORE;LABEL;MMSB" "" ${ARGN})
  set(targets ${G_UNPARSED_ARGUMENTS})
  if(NOT targets)
    message(FATAL_ERROR "mmsb_ir_generation_step: name at least one target")
  endif()
  if(NOT TARGET mmsb_ir_generation)
    if(G_MMSB)
      set(cli "${G_MMSB}")
    elseif(TARGET mmsb-cli)
      set(cli "$<TARGET_FILE:mmsb-cli>")
    elseif(TARGET mmsb::cli)
      set(cli "$<TARGET_FILE:mmsb::cli>")
    else()
      message(FATAL_ERROR "mmsb_ir_generation_step: the mmsb CLI was not found (pass MMSB)")
    endif()
    if(NOT G_STORE)
      set(G_STORE "${CMAKE_BINARY_DIR}/.mmsb/ir.db")
    endif()
    set(label_args)
    if(G_LABEL)
      set(label_args --label "${G_LABEL}")
    endif()
    add_custom_target(mmsb_ir_generation
      COMMAND "${cli}" ir new-generation --quiet --store "${G_STORE}" ${label_args}
      WORKING_DIRECTORY "${CMAKE_BINARY_DIR}"
      COMMENT "mmsb: the next IR capture opens a new generation"
      VERBATIM)
    if(TARGET mmsb-cli)
      add_dependencies(mmsb_ir_generation mmsb-cli)
    endif()
  endif()
  foreach(t ${targets})
    if(NOT TARGET ${t})
      message(FATAL_ERROR "mmsb_ir_generation_step: '${t}' is not a target")
    endif()
    add_dependencies(${t} mmsb_ir_generation)
  endforeach()
endfunction()
