include(GoogleTest)

# cairn_add_subdirectories(ROOT): add every direct child of ROOT that has a CMakeLists.txt.
function(cairn_add_subdirectories root)
  file(GLOB _children LIST_DIRECTORIES true RELATIVE ${CMAKE_CURRENT_SOURCE_DIR}/${root}
       ${CMAKE_CURRENT_SOURCE_DIR}/${root}/*)
  list(SORT _children)
  foreach(_child IN LISTS _children)
    if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${root}/${_child}/CMakeLists.txt)
      add_subdirectory(${root}/${_child})
    endif()
  endforeach()
endfunction()

# cairn_add_gtest(NAME LABEL unit|sim|integration|e2e SOURCES ... LIBS ... [TIMEOUT s])
# Builds a GoogleTest binary into build/bin and registers each test case with ctest under LABEL.
# Labels matter: tests/run.sh runs "unit" and "sim" again under ASan+UBSan.
function(cairn_add_gtest name)
  cmake_parse_arguments(ARG "" "LABEL;TIMEOUT" "SOURCES;LIBS" ${ARGN})
  if(NOT ARG_LABEL)
    set(ARG_LABEL unit)
  endif()
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gmock GTest::gtest_main Threads::Threads)
  gtest_discover_tests(${name}
    DISCOVERY_MODE PRE_TEST
    PROPERTIES LABELS ${ARG_LABEL} TIMEOUT ${ARG_TIMEOUT})
endfunction()
