# Embeds the flame-graph viewer into gpa_actors: embed.js turns the npm
# packages pinned by package-lock.json (installed by `npm ci`, which
# scripts/common.sh runs) plus viewer.js / viewer.css into a generated .cpp.
# Sets GPA_VIEWER_ASSETS_CPP, the generated source to compile.

set(GPA_VIEWER_DIR ${CMAKE_CURRENT_LIST_DIR})
set(GPA_VIEWER_ASSETS_CPP
    ${CMAKE_CURRENT_BINARY_DIR}/generated/flamegraph_assets.cpp)

find_program(GPA_NODE NAMES node nodejs)
if(NOT GPA_NODE)
  message(FATAL_ERROR "Node.js is needed at build time to embed the "
                      "flame-graph viewer: apt-get install nodejs npm")
endif()
if(NOT EXISTS ${GPA_VIEWER_DIR}/node_modules/d3-flame-graph/package.json)
  message(FATAL_ERROR
    "The flame-graph viewer's npm packages are not installed. Run:\n"
    "  npm ci --prefix ${GPA_VIEWER_DIR}\n"
    "(scripts/run-agent.sh and scripts/test.sh do it for you)")
endif()

add_custom_command(
  OUTPUT ${GPA_VIEWER_ASSETS_CPP}
  COMMAND ${GPA_NODE} ${GPA_VIEWER_DIR}/embed.js ${GPA_VIEWER_DIR}
          ${GPA_VIEWER_ASSETS_CPP}
  DEPENDS ${GPA_VIEWER_DIR}/embed.js ${GPA_VIEWER_DIR}/viewer.js
          ${GPA_VIEWER_DIR}/viewer.css ${GPA_VIEWER_DIR}/package-lock.json
  COMMENT "Embedding the flame-graph viewer"
  VERBATIM)
