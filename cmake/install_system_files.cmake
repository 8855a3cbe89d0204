# Run by `cmake --install` and cpack (install(CODE) in cmake/install.cmake), with the
# install-time CMAKE_INSTALL_PREFIX: puts the default config and the systemd unit (its
# paths filled in for this prefix) and its socket unit where the system looks for them.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  set(WSGATE_CONFDIR "/etc/wsgate")
  set(WSGATE_UNITDIR "/lib/systemd/system")
else()
  set(WSGATE_CONFDIR "${CMAKE_INSTALL_PREFIX}/etc/wsgate")
  set(WSGATE_UNITDIR "${CMAKE_INSTALL_PREFIX}/lib/systemd/system")
endif()
set(WSGATE_BINDIR "${CMAKE_INSTALL_PREFIX}/${WSGATE_BINDIR_REL}")
set(WSGATE_DOCDIR "${CMAKE_INSTALL_PREFIX}/${WSGATE_DOCDIR_REL}")
# One file per destination: installs into different prefixes may run at once.
string(MD5 destination "$ENV{DESTDIR}|${CMAKE_INSTALL_PREFIX}")
set(unit "${WSGATE_BINARY_DIR}/deploy/install/${destination}/wsgate.service")
configure_file("${WSGATE_SOURCE_DIR}/deploy/systemd/wsgate.service.in" "${unit}" @ONLY)
# file(INSTALL) puts $DESTDIR (cpack's staging folder) in front by itself.
file(INSTALL "${WSGATE_SOURCE_DIR}/conf/wsgate.toml" DESTINATION "${WSGATE_CONFDIR}")
file(INSTALL "${unit}" DESTINATION "${WSGATE_UNITDIR}")
# Socket activation for the unit above (not enabled by installing it).
file(INSTALL "${WSGATE_SOURCE_DIR}/deploy/systemd/wsgate.socket" DESTINATION "${WSGATE_UNITDIR}")
