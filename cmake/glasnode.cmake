# Shared target settings for glasnode's own code (never applied to third-party code).

set(GLASNODE_WARNINGS
    -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wcast-qual -Wformat=2
    -Wimplicit-fallthrough -Wmissing-declarations)
# clang's -Wmissing-declarations does not flag a non-static function without a prior
# declaration; -Wmissing-prototypes does (g++ checks that with -Wmissing-declarations).
if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  list(APPEND GLASNODE_WARNINGS -Wmissing-prototypes)
  # Boost 1.74 Asio enables co_await under clang only with <experimental/coroutine>, which
  # libstdc++ does not ship; clang 14 in C++20 mode has the standard <coroutine> it also uses.
  add_compile_definitions(BOOST_ASIO_HAS_CO_AWAIT=1)
endif()
# g++ 12 reports Boost 1.74 Asio's coroutine frames (awaitable_frame_base's sized operator
# delete paired with its operator new) as mismatched: a false positive in Boost's header.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  list(APPEND GLASNODE_WARNINGS -Wno-mismatched-new-delete)
endif()

if(GLASNODE_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    # clang 14's -fsanitize=function (part of `undefined`) puts prologue data on coroutine
    # functions that its backend then cannot emit ("Cannot represent a difference across
    # sections", llvm-project issue 49689).
    add_compile_options(-fno-sanitize=function)
  endif()
endif()

if(GLASNODE_TSAN)
  if(GLASNODE_SANITIZE)
    message(FATAL_ERROR "GLASNODE_TSAN and GLASNODE_SANITIZE cannot be combined")
  endif()
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer)
  add_link_options(-fsanitize=thread)
endif()

# glasnode_options(<target>): warnings (errors with GLASNODE_WERROR) and the repository root
# as the include root, so headers are included as "storage/env.hpp", "overlay/wire/frame.hpp".
function(glasnode_options target)
  get_target_property(type ${target} TYPE)
  if(type STREQUAL "INTERFACE_LIBRARY")
    target_include_directories(${target} INTERFACE ${PROJECT_SOURCE_DIR})
    return()
  endif()
  target_compile_options(${target} PRIVATE ${GLASNODE_WARNINGS})
  if(GLASNODE_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR})
endfunction()

# glasnode_gtest(<name> SOURCES ... LIBS ... [LABELS ...] [TIMEOUT s])
# One GoogleTest executable; each TEST becomes its own CTest entry.
function(glasnode_gtest name)
  cmake_parse_arguments(arg "" "TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  add_executable(${name} ${arg_SOURCES})
  glasnode_options(${name})
  target_link_libraries(${name} PRIVATE ${arg_LIBS} GTest::gtest_main GTest::gmock)
  if(NOT arg_TIMEOUT)
    set(arg_TIMEOUT 120)
  endif()
  if(NOT arg_LABELS)
    set(arg_LABELS unit)
  endif()
  include(GoogleTest)
  gtest_discover_tests(${name}
    PROPERTIES LABELS "${arg_LABELS}" TIMEOUT ${arg_TIMEOUT}
    DISCOVERY_TIMEOUT 60)
endfunction()
