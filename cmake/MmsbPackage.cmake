# Install rules, the CMake package, pkg-config file and the mmsb-c++ wrapper.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(MMSB_INSTALL_PLUGINDIR "${CMAKE_INSTALL_LIBDIR}/mmsb")
set(MMSB_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/mmsb")

set_target_properties(mmsb_core PROPERTIES EXPORT_NAME core)
install(TARGETS mmsb mmsb_core mmsb_kernels EXPORT mmsbTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/runtime/include/mmsb DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/kernels/include/mmsb DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS mmsb-cli RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
if(TARGET mmsb-plugin)
  install(TARGETS mmsb-plugin LIBRARY DESTINATION ${MMSB_INSTALL_PLUGINDIR})
  install(TARGETS mmsb-rewrite RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endif()
install(EXPORT mmsbTargets NAMESPACE mmsb:: DESTINATION ${MMSB_INSTALL_CMAKEDIR})
if(TARGET mmsb_replication)
  # Its own export set: mmsbConfig.cmake loads it (and finds libnats) only when installed.
  set_target_properties(mmsb_replication PROPERTIES EXPORT_NAME replication)
  install(TARGETS mmsb_replication EXPORT mmsbReplicationTargets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
  install(FILES ${PROJECT_SOURCE_DIR}/replication/include/mmsb/replication.h
    DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  install(EXPORT mmsbReplicationTargets NAMESPACE mmsb:: DESTINATION ${MMSB_INSTALL_CMAKEDIR})
endif()

configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/mmsbConfig.cmake.in
  ${PROJECT_BINARY_DIR}/mmsbConfig.cmake
  INSTALL_DESTINATION ${MMSB_INSTALL_CMAKEDIR}
  PATH_VARS CMAKE_INSTALL_INCLUDEDIR CMAKE_INSTALL_BINDIR MMSB_INSTALL_PLUGINDIR)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/mmsbConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES
  ${PROJECT_BINARY_DIR}/mmsbConfig.cmake
  ${PROJECT_BINARY_DIR}/mmsbConfigVersion.cmake
  ${PROJECT_SOURCE_DIR}/cmake/MmsbInstrument.cmake
  ${PROJECT_SOURCE_DIR}/cmake/MmsbIr.cmake
  DESTINATION ${MMSB_INSTALL_CMAKEDIR})

file(RELATIVE_PATH MMSB_PC_TO_PREFIX "/p/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/p")
configure_file(${PROJECT_SOURCE_DIR}/cmake/mmsb.pc.in ${PROJECT_BINARY_DIR}/mmsb.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/mmsb.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

if(TARGET mmsb-plugin)
  # Installed wrapper: paths relative to <prefix>/bin.
  set(MMSB_WRAPPER_PLUGIN "")
  set(MMSB_WRAPPER_INCLUDE "")
  set(MMSB_WRAPPER_LIBDIR "")
  configure_file(${PROJECT_SOURCE_DIR}/tools/wrapper/mmsb-c++.in ${PROJECT_BINARY_DIR}/install-wrapper/mmsb-c++ @ONLY)
  install(PROGRAMS ${PROJECT_BINARY_DIR}/install-wrapper/mmsb-c++ DESTINATION ${CMAKE_INSTALL_BINDIR})
  # Build-tree wrapper (build/bin/mmsb-c++): absolute paths into this build.
  set(MMSB_WRAPPER_PLUGIN "${PROJECT_BINARY_DIR}/plugin/mmsb-plugin.so")
  set(MMSB_WRAPPER_INCLUDE "${PROJECT_SOURCE_DIR}/runtime/include")
  set(MMSB_WRAPPER_LIBDIR "${PROJECT_BINARY_DIR}/runtime")
  configure_file(${PROJECT_SOURCE_DIR}/tools/wrapper/mmsb-c++.in ${PROJECT_BINARY_DIR}/bin/mmsb-c++
                 @ONLY FILE_PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE
                 WORLD_READ WORLD_EXECUTE)
endif()
