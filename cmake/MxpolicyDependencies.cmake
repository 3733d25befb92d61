# Every dependency comes from a Debian 12 package (see scripts/install-deps.sh).
find_package(Threads REQUIRED)
find_package(absl REQUIRED CONFIG)
# Protobuf 3.21 in Debian ships no CMake config: module mode.
find_package(Protobuf REQUIRED)
find_package(gRPC REQUIRED CONFIG)
find_package(CURL REQUIRED)
find_package(OpenSSL REQUIRED)
find_package(GTest REQUIRED CONFIG)

# libunbound's pkg-config file drags libevent/nettle in: find it directly.
find_path(UNBOUND_INCLUDE_DIR unbound.h REQUIRED)
find_library(UNBOUND_LIBRARY unbound REQUIRED)
add_library(mxpolicy::unbound UNKNOWN IMPORTED)
set_target_properties(mxpolicy::unbound PROPERTIES
  IMPORTED_LOCATION ${UNBOUND_LIBRARY}
  INTERFACE_INCLUDE_DIRECTORIES ${UNBOUND_INCLUDE_DIR})

find_path(IDN2_INCLUDE_DIR idn2.h REQUIRED)
find_library(IDN2_LIBRARY idn2 REQUIRED)
add_library(mxpolicy::idn2 UNKNOWN IMPORTED)
set_target_properties(mxpolicy::idn2 PROPERTIES
  IMPORTED_LOCATION ${IDN2_LIBRARY}
  INTERFACE_INCLUDE_DIRECTORIES ${IDN2_INCLUDE_DIR})

find_program(GRPC_CPP_PLUGIN grpc_cpp_plugin REQUIRED)

# civetweb (metrics endpoint): its CMake package also wants the civetweb
# program, which the -dev package lacks: find the library directly.
find_path(CIVETWEB_INCLUDE_DIR civetweb.h REQUIRED)
find_library(CIVETWEB_LIBRARY civetweb REQUIRED)
add_library(mxpolicy::civetweb UNKNOWN IMPORTED)
set_target_properties(mxpolicy::civetweb PROPERTIES
  IMPORTED_LOCATION ${CIVETWEB_LIBRARY}
  INTERFACE_INCLUDE_DIRECTORIES ${CIVETWEB_INCLUDE_DIR})
