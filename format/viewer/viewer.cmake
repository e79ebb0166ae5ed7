# Embeds the flame-graph viewer into gpa_format: `npm ci` installs the npm
# packages pinned by package-lock.json into the build tree (never into the
# source tree), then embed.js turns them plus viewer.js / viewer.css into a
# generated .cpp. Sets GPA_VIEWER_ASSETS_CPP, the generated source to
# compile, and GPA_NODE, the Node.js binary.

set(GPA_VIEWER_DIR ${CMAKE_CURRENT_LIST_DIR})
set(GPA_VIEWER_NPM_DIR ${CMAKE_CURRENT_BINARY_DIR}/viewer-npm)
set(GPA_VIEWER_ASSETS_CPP
    ${CMAKE_CURRENT_BINARY_DIR}/generated/flamegraph_assets.cpp)

find_program(GPA_NODE NAMES node nodejs)
find_program(GPA_NPM NAMES npm)
if(NOT GPA_NODE OR NOT GPA_NPM)
  message(FATAL_ERROR "Node.js and npm are needed at build time to embed the "
                      "flame-graph viewer: apt-get install nodejs npm")
endif()

# Installs the pinned packages from the committed lock file (the registry is
# npmjs.org; no other download happens).
add_custom_command(
  OUTPUT ${GPA_VIEWER_NPM_DIR}/node_modules/.gpa-installed
  COMMAND ${CMAKE_COMMAND} -E make_directory ${GPA_VIEWER_NPM_DIR}
  COMMAND ${CMAKE_COMMAND} -E copy ${GPA_VIEWER_DIR}/package.json
          ${GPA_VIEWER_DIR}/package-lock.json ${GPA_VIEWER_NPM_DIR}/
  COMMAND ${GPA_NPM} ci --no-audit --no-fund --prefix ${GPA_VIEWER_NPM_DIR}
  COMMAND ${CMAKE_COMMAND} -E touch
          ${GPA_VIEWER_NPM_DIR}/node_modules/.gpa-installed
  DEPENDS ${GPA_VIEWER_DIR}/package.json ${GPA_VIEWER_DIR}/package-lock.json
  COMMENT "Installing the flame-graph viewer's npm packages (npm ci)"
  VERBATIM)

add_custom_command(
  OUTPUT ${GPA_VIEWER_ASSETS_CPP}
  COMMAND ${GPA_NODE} ${GPA_VIEWER_DIR}/embed.js ${GPA_VIEWER_DIR}
          ${GPA_VIEWER_NPM_DIR} ${GPA_VIEWER_ASSETS_CPP}
  DEPENDS ${GPA_VIEWER_DIR}/embed.js ${GPA_VIEWER_DIR}/viewer.js
          ${GPA_VIEWER_DIR}/viewer.css
          ${GPA_VIEWER_NPM_DIR}/node_modules/.gpa-installed
  COMMENT "Embedding the flame-graph viewer"
  VERBATIM)
