# The Debian package (cpack -G DEB; scripts/package builds it from the release preset):
# hawser-server, hawser-cli, hawser-zdb, hawser-bench, the headers and the CMake package, the
# systemd unit, the default configuration (copied to /etc/hawser by postinst) and the docs.
install(FILES packaging/hawser.service DESTINATION lib/systemd/system)
install(FILES packaging/server.toml DESTINATION ${CMAKE_INSTALL_DATADIR}/hawser)
install(FILES README.md docs/operations.md docs/configuration.md docs/protocol.md
  docs/security.md docs/cluster.md docs/browser.md docs/cloud.md docs/zdb.md docs/design.md
  DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/hawser)

set(CPACK_PACKAGE_NAME hawser)
set(CPACK_PACKAGE_VENDOR "Hawser")
set(CPACK_PACKAGE_CONTACT "Hawser developers <hawser@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "server middleware for a million persistent encrypted connections")
set(CPACK_PACKAGE_DESCRIPTION "Hawser holds very many long connections, encrypted end to end
(Noise), with commands both ways, big streams, a cluster over NATS, an embedded document store
(ZDB) and a cloud service. This package has hawser-server (with a systemd unit), hawser-cli,
hawser-zdb, hawser-bench, and the C++ library with its headers and CMake package.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)  # Depends from the binaries' shared libraries
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "nats-server")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${PROJECT_SOURCE_DIR}/packaging/debian/postinst
  ${PROJECT_SOURCE_DIR}/packaging/debian/prerm
  ${PROJECT_SOURCE_DIR}/packaging/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
