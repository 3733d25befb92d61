# Every dependency comes from a Debian 12 package (see scripts/install-deps.sh).
find_package(Threads REQUIRED)
find_package(absl REQUIRED CONFIG)
# Protobuf 3.21 in Debian ships no CMake config: module mode.
find_package(Protobuf REQUIRED)
find_package(gRPC REQUIRED CONFIG)
find_package(CURL REQUIRED)
find_package(OpenSSL REQUIRED)
find_package(GTest REQUIRED CONFIG)

# mxpolicy_import_library(TARGET HEADER LIBRARY): an imported target for a
# Debian library found directly, header and shared object, where the
# package's own CMake or pkg-config files are unfit (see each call).
function(mxpolicy_import_library target header library)
  string(MAKE_C_IDENTIFIER "${target}" id)
  find_path(${id}_INCLUDE_DIR ${header} REQUIRED)
  find_library(${id}_LIBRARY ${library} REQUIRED)
  add_library(${target} UNKNOWN IMPORTED GLOBAL)
  set_target_properties(${target} PROPERTIES
    IMPORTED_LOCATION ${${id}_LIBRARY}
    INTERFACE_INCLUDE_DIRECTORIES ${${id}_INCLUDE_DIR})
endfunction()

# libunbound's pkg-config file drags libevent/nettle in.
mxpolicy_import_library(mxpolicy::unbound unbound.h unbound)
mxpolicy_import_library(mxpolicy::idn2 idn2.h idn2)
# civetweb (metrics endpoint): its CMake package also wants the civetweb
# program, which the -dev package lacks.
mxpolicy_import_library(mxpolicy::civetweb civetweb.h civetweb)
# hiredis 0.14 (the L2 tier; the tests write raw values with it too).
mxpolicy_import_library(mxpolicy::hiredis hiredis/hiredis.h hiredis)

find_program(GRPC_CPP_PLUGIN grpc_cpp_plugin REQUIRED)
