# `cmake --install`: the gateway, the demo echo backend, the default config (as
# <confdir>/wsgate.toml), the documented example, the docs and the systemd unit; and a
# Debian package of the same with cpack (docs/operations.md).
#
# The config and the unit go where the system looks for them, decided at install time
# from the prefix given then (cmake/install_system_files.cmake): for /usr (the
# package), /etc/wsgate and /lib/systemd/system; for any other prefix, <prefix>/etc/wsgate
# and <prefix>/lib/systemd/system.
include(GNUInstallDirs)

install(TARGETS wsgate wsgate-echo-backend RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${CMAKE_SOURCE_DIR}/conf/example-full.toml ${CMAKE_SOURCE_DIR}/README.md
              ${CMAKE_SOURCE_DIR}/docs/configuration.md ${CMAKE_SOURCE_DIR}/docs/metrics.md
              ${CMAKE_SOURCE_DIR}/docs/operations.md ${CMAKE_SOURCE_DIR}/docs/architecture.md
              ${CMAKE_SOURCE_DIR}/metrics/grafana-dashboard.json
        DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(CODE "
  set(WSGATE_SOURCE_DIR \"${CMAKE_SOURCE_DIR}\")
  set(WSGATE_BINARY_DIR \"${CMAKE_BINARY_DIR}\")
  set(WSGATE_BINDIR_REL \"${CMAKE_INSTALL_BINDIR}\")
  set(WSGATE_DOCDIR_REL \"${CMAKE_INSTALL_DOCDIR}\")
  include(\"${CMAKE_SOURCE_DIR}/cmake/install_system_files.cmake\")")

# cpack -G DEB (in build-test: `cpack --config CPackConfig.cmake -G DEB`): one package,
# installed under /usr, the config under /etc/wsgate (a conffile), the unit under
# /lib/systemd/system. Dependencies from the libraries' packages (dpkg-shlibdeps).
set(CPACK_PACKAGE_NAME wsgate)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "wsgate maintainers <wsgate@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "WebSocket gateway: TLS, HTTP/1.1 and HTTP/2, balancing, metrics")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${CMAKE_SOURCE_DIR}/deploy/debian/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_STRIP_FILES ON)
include(CPack)
