# mxpolicy_proto_library(NAME ROOT proto...): generates C++ messages and gRPC
# stubs for the given .proto files (paths under ROOT, which is also the
# import root) into a static library NAME, and NAME_grpc for the stubs, so
# that layers needing only messages do not link gRPC.
function(mxpolicy_proto_library name root)
  set(gen_dir ${CMAKE_CURRENT_BINARY_DIR})
  set(msg_srcs)
  set(grpc_srcs)
  foreach(proto ${ARGN})
    file(RELATIVE_PATH rel ${root} ${proto})
    string(REGEX REPLACE "\\.proto$" "" base ${rel})
    set(msg ${gen_dir}/${base}.pb.cc ${gen_dir}/${base}.pb.h)
    set(svc ${gen_dir}/${base}.grpc.pb.cc ${gen_dir}/${base}.grpc.pb.h)
    add_custom_command(
      OUTPUT ${msg} ${svc}
      COMMAND protobuf::protoc
        --proto_path=${root}
        --cpp_out=${gen_dir}
        --grpc_out=${gen_dir}
        --plugin=protoc-gen-grpc=${GRPC_CPP_PLUGIN}
        ${proto}
      DEPENDS ${proto}
      COMMENT "protoc ${rel}")
    list(APPEND msg_srcs ${msg})
    list(APPEND grpc_srcs ${svc})
  endforeach()
  add_library(${name} STATIC ${msg_srcs})
  target_include_directories(${name} PUBLIC ${gen_dir})
  target_link_libraries(${name} PUBLIC protobuf::libprotobuf)
  add_library(${name}_grpc STATIC ${grpc_srcs})
  target_link_libraries(${name}_grpc PUBLIC ${name} gRPC::grpc++)
endfunction()
