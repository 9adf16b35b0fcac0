# Compiler flags shared by every target.
add_compile_options(-Wall -Wextra)
# Designated initializers that rely on member defaults are idiomatic here.
add_compile_options(-Wno-missing-field-initializers)
if(CAIRN_WERROR)
  add_compile_options(-Werror)
endif()

# Boost 1.74's Asio under C++20 with g++ 12 uses std::exchange without including <utility>.
add_compile_options("$<$<COMPILE_LANGUAGE:CXX>:SHELL:-include utility>")

if(CAIRN_SANITIZE)
  string(REPLACE "," ";" _sanitizers "${CAIRN_SANITIZE}")
  foreach(_s IN LISTS _sanitizers)
    add_compile_options(-fsanitize=${_s})
    add_link_options(-fsanitize=${_s})
  endforeach()
  add_compile_options(-fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_compile_definitions(CAIRN_SANITIZED=1)
endif()

find_program(CCACHE_PROGRAM ccache)
if(CCACHE_PROGRAM)
  set(CMAKE_CXX_COMPILER_LAUNCHER ${CCACHE_PROGRAM})
  set(CMAKE_C_COMPILER_LAUNCHER ${CCACHE_PROGRAM})
endif()
