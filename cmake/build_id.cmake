# Run at build time (cmake -P, by the wsgate_build_id target in CMakeLists.txt): writes
# OUT, a header with the project version and the git commit the tree was built from
# ("unknown" outside a git checkout; "-dirty" when tracked files differ from it).
# The file is rewritten only when its text changes, so an unchanged commit rebuilds
# nothing.
#   cmake -DSOURCE_DIR=<tree> -DVERSION=<x.y.z> -DOUT=<header> -P build_id.cmake
set(commit "unknown")
find_program(GIT git)
if(GIT)
  execute_process(COMMAND ${GIT} -C ${SOURCE_DIR} rev-parse --short=12 HEAD
                  OUTPUT_VARIABLE head RESULT_VARIABLE rc OUTPUT_STRIP_TRAILING_WHITESPACE
                  ERROR_QUIET)
  if(rc EQUAL 0 AND NOT head STREQUAL "")
    set(commit ${head})
    execute_process(COMMAND ${GIT} -C ${SOURCE_DIR} status --porcelain --untracked-files=no
                    OUTPUT_VARIABLE changes RESULT_VARIABLE rc OUTPUT_STRIP_TRAILING_WHITESPACE
                    ERROR_QUIET)
    if(rc EQUAL 0 AND NOT changes STREQUAL "")
      string(APPEND commit "-dirty")
    endif()
  endif()
endif()
set(text "// Generated at build time by cmake/build_id.cmake: do not edit.\n")
string(APPEND text "#define WSGATE_VERSION \"${VERSION}\"\n")
string(APPEND text "#define WSGATE_GIT_COMMIT \"${commit}\"\n")
set(old "")
if(EXISTS ${OUT})
  file(READ ${OUT} old)
endif()
if(NOT old STREQUAL text)
  file(WRITE ${OUT} "${text}")
endif()
