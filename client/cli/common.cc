#include "client/cli/common.h"

#include <cstdio>
#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/strip.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/util/json_util.h"

namespace mxpolicy::cli {
namespace {

std::string Short(const google::protobuf::EnumDescriptor* desc, int value,
                  absl::string_view prefix) {
  const google::protobuf::EnumValueDescriptor* v =
      desc->FindValueByNumber(value);
  if (v == nullptr) return absl::StrCat(value);
  absl::string_view name = v->name();
  absl::ConsumePrefix(&name, prefix);
  return absl::AsciiStrToLower(name);
}

}  // namespace

const char kTlsFlagsUsage[] =
    "TLS to mxpolicyd (every command; any of them turns TLS on):\n"
    "  --tls-ca=F           PEM CA bundle that verifies the server (default:\n"
    "                       the system roots)\n"
    "  --tls-cert=F --tls-key=F\n"
    "                       client certificate and key, for a server with\n"
    "                       mTLS (--tls-client-ca)\n"
    "  --tls-server-name=N  name expected in the server's certificate instead\n"
    "                       of --server's host\n";

FlagParse ParseCommonFlag(absl::string_view arg, CommonFlags& flags,
                          std::string* error) {
  absl::string_view value = arg;
  if (absl::ConsumePrefix(&value, "--server=")) {
    if (value.empty()) {
      *error = "--server needs an address, e.g. --server=127.0.0.1:8460";
      return FlagParse::kError;
    }
    flags.server = std::string(value);
    return FlagParse::kOk;
  }
  if (absl::ConsumePrefix(&value, "--deadline=")) {
    absl::Duration d;
    if (!absl::ParseDuration(value, &d) || d <= absl::ZeroDuration() ||
        d == absl::InfiniteDuration()) {
      *error = absl::StrCat("bad --deadline \"", Printable(value, 64),
                            "\": want a positive duration like 10s or 1500ms");
      return FlagParse::kError;
    }
    flags.deadline = d;
    return FlagParse::kOk;
  }
  for (auto [prefix, out] :
       {std::pair{"--tls-ca=", &flags.tls_ca},
        std::pair{"--tls-cert=", &flags.tls_cert},
        std::pair{"--tls-key=", &flags.tls_key},
        std::pair{"--tls-server-name=", &flags.tls_server_name}}) {
    if (absl::ConsumePrefix(&value, prefix)) {
      if (value.empty()) {
        *error = absl::StrCat(prefix, " needs a value");
        return FlagParse::kError;
      }
      *out = std::string(value);
      return FlagParse::kOk;
    }
  }
  // The value-taking flags without "=" are a common slip; say so rather than
  // treating the next word as a domain.
  if (arg == "--server" || arg == "--deadline" || arg == "--tls-ca" ||
      arg == "--tls-cert" || arg == "--tls-key" ||
      arg == "--tls-server-name") {
    *error = absl::StrCat(arg, " needs a value: ", arg, "=...");
    return FlagParse::kError;
  }
  return FlagParse::kNotMine;
}

std::optional<int> ParseCommandArgs(
    absl::string_view command, const char* usage,
    const std::vector<std::string>& args, CommonFlags& flags,
    absl::FunctionRef<FlagParse(absl::string_view arg, std::string* error)> own,
    std::vector<std::string>& positional) {
  auto fail = [command](absl::string_view error) {
    std::fprintf(stderr, "%.*s: %.*s\n", static_cast<int>(command.size()),
                 command.data(), static_cast<int>(error.size()), error.data());
    return 2;
  };
  for (const std::string& arg : args) {
    std::string error;
    FlagParse parsed = ParseCommonFlag(arg, flags, &error);
    if (parsed == FlagParse::kNotMine) parsed = own(arg, &error);
    if (parsed == FlagParse::kError) return fail(error);
    if (parsed == FlagParse::kOk) continue;
    if (arg == "--help") {
      std::printf("%s%s", usage, kTlsFlagsUsage);
      return 0;
    }
    if (absl::StartsWith(arg, "--")) {
      fail(absl::StrCat("unknown flag ", Printable(arg, 64)));
      std::fprintf(stderr, "%s", usage);
      return 2;
    }
    positional.push_back(arg);
  }
  return std::nullopt;
}

std::unique_ptr<Client> MakeClientOrReport(absl::string_view command,
                                           const CommonFlags& flags) {
  absl::StatusOr<std::unique_ptr<Client>> client = MakeClient(flags);
  if (client.ok()) return *std::move(client);
  std::fprintf(stderr, "%.*s: %s\n", static_cast<int>(command.size()),
               command.data(), std::string(client.status().message()).c_str());
  return nullptr;
}

void ReportResolveError(absl::string_view command, absl::string_view domain,
                        const absl::Status& status) {
  std::fprintf(stderr, "%.*s: %s: %s (code %d)\n",
               static_cast<int>(command.size()), command.data(),
               Printable(domain, 300).c_str(),
               Printable(status.message()).c_str(),
               static_cast<int>(status.code()));
}

absl::StatusOr<std::unique_ptr<Client>> MakeClient(const CommonFlags& flags) {
  ClientOptions options;
  options.target = flags.server;
  options.use_tls = !flags.tls_ca.empty() || !flags.tls_cert.empty() ||
                    !flags.tls_key.empty() || !flags.tls_server_name.empty();
  options.ca_file = flags.tls_ca;
  options.cert_file = flags.tls_cert;
  options.key_file = flags.tls_key;
  options.tls_server_name = flags.tls_server_name;
  options.cache_entries = 0;
  options.stale_if_error = absl::ZeroDuration();
  return Client::Create(options);
}

std::string DecisionName(v1::Decision d) {
  return Short(v1::Decision_descriptor(), d, "DECISION_");
}
std::string DnssecName(v1::DnssecState s) {
  return Short(v1::DnssecState_descriptor(), s, "DNSSEC_STATE_");
}
std::string TlsaStateName(v1::TlsaState s) {
  return Short(v1::TlsaState_descriptor(), s, "TLSA_STATE_");
}
std::string RequirementName(v1::TlsRequirement r) {
  return Short(v1::TlsRequirement_descriptor(), r, "TLS_REQUIREMENT_");
}
std::string SourceName(v1::Source s) {
  return Short(v1::Source_descriptor(), s, "SOURCE_");
}
std::string StsModeName(v1::StsMode m) {
  return Short(v1::StsMode_descriptor(), m, "STS_MODE_");
}

std::string Printable(absl::string_view s, size_t max_len) {
  const bool cut = max_len > 0 && s.size() > max_len;
  if (cut) s = s.substr(0, max_len);
  std::string out;
  out.reserve(s.size() + 3);
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u < 0x20 || u == 0x7f ? '?' : c);
  }
  if (cut) out += "...";
  return out;
}

std::string JsonQuote(absl::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (u < 0x20 || u == 0x7f) {
          absl::StrAppendFormat(&out, "\\u%04x", u);
        } else {
          out.push_back(c);
        }
    }
  }
  out += "\"";
  return out;
}

std::string ToJson(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, options);
  return out;
}

std::string HumanDuration(absl::Duration d) { return absl::FormatDuration(d); }

}  // namespace mxpolicy::cli
