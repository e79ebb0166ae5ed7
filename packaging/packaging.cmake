# Installing and packaging: `cmake --install build --prefix P` and
# `cpack -G DEB` in the build directory (or the `package` target). Included by
# the top-level CMakeLists.txt after every target is defined.
#
# Layout under the prefix P (GNUInstallDirs):
#   bin/gprofiler-agent                  the agent
#   lib/gprofiler-agent/node/*.node      its Node.js addon (runtime/)
#   lib/systemd/system/gprofiler-agent.service
#   etc/gprofiler/config.ini             the default config (/etc with /usr)
#   share/doc/gprofiler-agent/           README.md and docs/*.md
#
# The addon's directory is `lib`, not CMAKE_INSTALL_LIBDIR (which is
# lib/x86_64-linux-gnu for /usr on Debian): the agent finds it at
# ../lib/gprofiler-agent/node next to its binary (find_node_addon_dir).

include(GNUInstallDirs)

set(GPA_PACKAGING_DIR ${CMAKE_CURRENT_LIST_DIR})

install(TARGETS gprofiler-agent RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES ${GPA_PACKAGING_DIR}/gprofiler-agent.service
        DESTINATION lib/systemd/system)
install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/
        DESTINATION ${CMAKE_INSTALL_DOCDIR}
        FILES_MATCHING PATTERN "*.md")

# The config file goes to P/etc, except for the prefix /usr, whose
# configuration is in /etc (as GNUInstallDirs' CMAKE_INSTALL_FULL_SYSCONFDIR
# has it). Decided when installing, because cpack installs with its own
# prefix (/usr, below); file(INSTALL) adds DESTDIR, which cpack sets.
install(
  CODE "
  if(CMAKE_INSTALL_PREFIX STREQUAL \"/usr\")
    set(gpa_sysconfdir /etc)
  else()
    set(gpa_sysconfdir \"\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_SYSCONFDIR}\")
  endif()
  file(INSTALL DESTINATION \"\${gpa_sysconfdir}/gprofiler\" TYPE FILE
       PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ
       FILES \"${GPA_PACKAGING_DIR}/config.ini\")
  ")

# -- the Debian package ---------------------------------------------------------
# gprofiler-agent_<version>_<arch>.deb, the version being project()'s.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME gprofiler-agent)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "gprofiler-agent maintainers <gprofiler-agent@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "continuous profiling agent, a drop-in for gProfiler's agent")
set(CPACK_PACKAGE_DESCRIPTION
    "Profiles every process of the host with perf and runtime profilers, \
window after window, and writes the profiles locally and/or uploads them \
to gProfiler Performance Studio. Runs as the systemd service gprofiler-agent.")
# Installed under /usr, with DESTDIR (so the config's /etc rule above sees
# the prefix /usr; with DESTDIR cpack installs to CPACK_INSTALL_PREFIX).
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_INSTALL_PREFIX /usr)
set(CPACK_SET_DESTDIR ON)
# Stripped, as Debian ships binaries: the build's debug information makes the
# agent ~90 MB and packing it takes minutes.
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION utils)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Depends: from the libraries the binary links (dpkg-shlibdeps, dpkg-dev).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS linux-perf)
# conffiles: dpkg keeps an edited /etc/gprofiler/config.ini on upgrade.
# Maintainer scripts: see each one.
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${GPA_PACKAGING_DIR}/debian/conffiles ${GPA_PACKAGING_DIR}/debian/postinst
    ${GPA_PACKAGING_DIR}/debian/prerm ${GPA_PACKAGING_DIR}/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
include(CPack)
