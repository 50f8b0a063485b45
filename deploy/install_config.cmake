# install_config.cmake - runs at install time (install(SCRIPT), deploy/CMakeLists.txt):
# installs the systemd unit and the example configuration with this installation's
# paths. The configuration goes to /etc/sluice with the prefix /usr (the Debian
# package), else to <prefix>/etc/sluice (GNU's rule); the unit to
# <prefix>/lib/systemd/system, its ExecStart naming <prefix>/bin/sluiced and that
# configuration. Only those two strings of deploy/sluiced.service are rewritten.
if(CMAKE_INSTALL_PREFIX MATCHES "^/usr/?$")
  set(etc "/etc")
else()
  set(etc "${CMAKE_INSTALL_PREFIX}/etc")
endif()
if(IS_ABSOLUTE "${SLUICE_BINDIR}")
  set(bindir "${SLUICE_BINDIR}")
else()
  set(bindir "${CMAKE_INSTALL_PREFIX}/${SLUICE_BINDIR}")
endif()

file(READ "${SLUICE_DEPLOY_DIR}/sluiced.service" unit)
if(NOT unit MATCHES "\nExecStart=[^ \n]*/sluiced --config /etc/sluice/sluice.ini")
  message(FATAL_ERROR "deploy/sluiced.service: no line 'ExecStart=.../sluiced --config "
                      "/etc/sluice/sluice.ini' to point at this installation")
endif()
string(REGEX REPLACE "\nExecStart=[^ \n]*/sluiced --config /etc/sluice/sluice.ini"
       "\nExecStart=${bindir}/sluiced --config ${etc}/sluice/sluice.ini" unit "${unit}")
file(WRITE "${SLUICE_STAGE_DIR}/sluiced.service" "${unit}")

file(INSTALL DESTINATION "${CMAKE_INSTALL_PREFIX}/lib/systemd/system" TYPE FILE
     FILES "${SLUICE_STAGE_DIR}/sluiced.service")
file(INSTALL DESTINATION "${etc}/sluice" TYPE FILE FILES "${SLUICE_DEPLOY_DIR}/sluice.ini")
