// mxpolicy — the operator CLI.
//   mxpolicy resolve [--server=ADDR] [--json] [--deadline=D] DOMAIN...
// Exit codes: 0 every domain answered; 1 some RPC failed (including
// INVALID_ARGUMENT for a bad domain); 2 usage error.
#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "google/protobuf/util/json_util.h"
#include "mxpolicy/v1/mxpolicy.grpc.pb.h"

namespace {

namespace v1 = mxpolicy::v1;

constexpr char kUsage[] =
    "Usage: mxpolicy resolve [--server=ADDR] [--json] [--deadline=D] "
    "DOMAIN...\n"
    "  --server=ADDR   mxpolicyd address (default 127.0.0.1:8460)\n"
    "  --json          one JSON object per line (proto3 JSON mapping)\n"
    "  --deadline=D    per-call deadline, e.g. 10s (default 30s)\n"
    "Exit codes: 0 all answered, 1 an RPC failed, 2 usage error.\n";

// Enum value name without its type prefix, lowercased: DNSSEC_STATE_SECURE
// → "secure".
template <typename Enum>
std::string Short(const google::protobuf::EnumDescriptor* desc, Enum value,
                  absl::string_view prefix) {
  const google::protobuf::EnumValueDescriptor* v =
      desc->FindValueByNumber(static_cast<int>(value));
  if (v == nullptr) return absl::StrCat(static_cast<int>(value));
  absl::string_view name = v->name();
  absl::ConsumePrefix(&name, prefix);
  return absl::AsciiStrToLower(name);
}

void PrintTable(const v1::ResolveResponse& r) {
  std::printf("%s\n", r.domain().c_str());
  std::printf(
      "  decision : %s\n",
      Short(v1::Decision_descriptor(), r.decision(), "DECISION_").c_str());
  std::printf("  reason   : %s\n", r.reason().c_str());
  std::printf(
      "  mx rrset : %s%s   ttl: %llds   source: %s\n",
      Short(v1::DnssecState_descriptor(), r.mx_dnssec(), "DNSSEC_STATE_")
          .c_str(),
      r.implicit_mx() ? " (implicit MX)" : "",
      static_cast<long long>(r.ttl().seconds()),
      Short(v1::Source_descriptor(), r.source(), "SOURCE_").c_str());
  if (r.mx_hosts_size() > 0) {
    std::printf("  %-5s %-32s %-13s %-9s %-14s %s\n", "PREF", "HOST",
                "ADDR-DNSSEC", "TLSA", "REQUIREMENT", "TLSA RECORDS / REASON");
  }
  for (const v1::MxHost& h : r.mx_hosts()) {
    std::vector<std::string> tlsa;
    for (const v1::TlsaRecord& t : h.tlsa_records()) {
      tlsa.push_back(absl::StrFormat("%d %d %d %s", t.usage(), t.selector(),
                                     t.matching_type(),
                                     absl::BytesToHexString(t.data())));
    }
    std::printf(
        "  %-5u %-32s %-13s %-9s %-14s %s\n", h.preference(),
        h.hostname().c_str(),
        Short(v1::DnssecState_descriptor(), h.address_dnssec(), "DNSSEC_STATE_")
            .c_str(),
        Short(v1::TlsaState_descriptor(), h.tlsa_state(), "TLSA_STATE_")
            .c_str(),
        Short(v1::TlsRequirement_descriptor(), h.tls_requirement(),
              "TLS_REQUIREMENT_")
            .c_str(),
        tlsa.empty() ? h.reason().c_str() : absl::StrJoin(tlsa, ", ").c_str());
  }
}

int Resolve(const std::vector<std::string>& args) {
  std::string server = "127.0.0.1:8460";
  bool json = false;
  absl::Duration deadline = absl::Seconds(30);
  std::vector<std::string> domains;
  for (const std::string& arg : args) {
    absl::string_view a = arg;
    if (absl::ConsumePrefix(&a, "--server=")) {
      server = std::string(a);
    } else if (a == "--json") {
      json = true;
    } else if (absl::ConsumePrefix(&a, "--deadline=")) {
      if (!absl::ParseDuration(a, &deadline) ||
          deadline <= absl::ZeroDuration()) {
        std::fprintf(stderr, "mxpolicy: bad --deadline \"%s\"\n", arg.c_str());
        return 2;
      }
    } else if (absl::StartsWith(a, "--")) {
      std::fprintf(stderr, "mxpolicy: unknown flag %s\n%s", arg.c_str(),
                   kUsage);
      return 2;
    } else {
      domains.push_back(arg);
    }
  }
  if (domains.empty()) {
    std::fprintf(stderr, "%s", kUsage);
    return 2;
  }
  auto stub = v1::PolicyResolver::NewStub(
      grpc::CreateChannel(server, grpc::InsecureChannelCredentials()));
  int rc = 0;
  for (const std::string& domain : domains) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + deadline));
    v1::ResolveRequest request;
    request.set_domain(domain);
    v1::ResolveResponse response;
    grpc::Status status = stub->Resolve(&context, request, &response);
    if (!status.ok()) {
      std::fprintf(stderr, "mxpolicy: %s: %s (code %d)\n", domain.c_str(),
                   status.error_message().c_str(),
                   static_cast<int>(status.error_code()));
      rc = 1;
      continue;
    }
    if (json) {
      std::string out;
      google::protobuf::util::JsonPrintOptions options;
      options.always_print_primitive_fields = true;
      (void)google::protobuf::util::MessageToJsonString(response, &out,
                                                        options);
      std::printf("%s\n", out.c_str());
    } else {
      PrintTable(response);
    }
  }
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || absl::string_view(argv[1]) == "--help" ||
      absl::string_view(argv[1]) == "help") {
    std::fprintf(argc < 2 ? stderr : stdout, "%s", kUsage);
    return argc < 2 ? 2 : 0;
  }
  const std::string command = argv[1];
  std::vector<std::string> args(argv + 2, argv + argc);
  if (command == "resolve") return Resolve(args);
  std::fprintf(stderr, "mxpolicy: unknown command \"%s\"\n%s", command.c_str(),
               kUsage);
  return 2;
}
