#include "server/src/rpc/request_metrics.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/strip.h"
#include "server/src/log/log.h"

namespace mxpolicy {
namespace {

using ::google::protobuf::internal::WireFormatLite;

std::string Lower(absl::string_view enum_name, absl::string_view prefix) {
  absl::ConsumePrefix(&enum_name, prefix);
  return absl::AsciiStrToLower(enum_name);
}

std::string DecisionLabel(int d) {
  return Lower(v1::Decision_Name(static_cast<v1::Decision>(d)), "DECISION_");
}
std::string SourceLabel(int s) {
  return Lower(v1::Source_Name(static_cast<v1::Source>(s)), "SOURCE_");
}

void LogAnswer(absl::string_view request_domain, const absl::Status& status,
               absl::string_view wire, AnswerLabels labels,
               absl::Duration elapsed) {
  // Fresh decisions and failures at info; answers from the cache at debug.
  const LogLevel level =
      status.ok() && labels.source != v1::SOURCE_FRESH ? LogLevel::kDebug
                                                       : LogLevel::kInfo;
  if (!LogEnabled(level)) return;
  LogLine line(level, "resolve");
  const double ms = absl::ToDoubleMilliseconds(elapsed);
  if (!status.ok()) {
    // The domain as asked is untrusted: cut to a DNS name's length; the
    // logger escapes it.
    line.Add("domain", request_domain.substr(0, 255))
        .Add("code", absl::StatusCodeToString(status.code()))
        .Add("error", status.message())
        .Add("ms", ms);
    return;
  }
  v1::ResolveResponse r;
  if (!r.ParseFromArray(wire.data(), static_cast<int>(wire.size()))) {
    line.Add("domain", request_domain.substr(0, 255))
        .Add("error", "unparsable answer");
    return;
  }
  line.Add("domain", r.domain())
      .Add("decision", DecisionLabel(r.decision()))
      .Add("source", SourceLabel(r.source()))
      .Add("ms", ms)
      .Add("ttl_s", static_cast<int64_t>(r.ttl().seconds()))
      .Add("mx_dnssec",
           Lower(v1::DnssecState_Name(r.mx_dnssec()), "DNSSEC_STATE_"))
      .Add("mx_hosts", static_cast<int64_t>(r.mx_hosts_size()));
  if (r.has_sts_policy()) {
    line.Add("sts_mode", Lower(v1::StsMode_Name(r.sts_policy().mode()),
                               "STS_MODE_"))
        .Add("sts_id", r.sts_policy().id());
  }
  line.Add("reason", r.reason());
  // A policy's text is the domain owner's data: only when debugging.
  if (LogEnabled(LogLevel::kDebug) && r.has_sts_policy()) {
    std::string body;
    for (const std::string& l : r.sts_policy().raw_lines()) {
      body += l;
      body += '\n';
    }
    line.Add("sts_policy", body);
  }
}

}  // namespace

AnswerLabels PeekAnswer(absl::string_view wire) {
  constexpr uint32_t kDecisionTag =
      WireFormatLite::MakeTag(v1::ResolveResponse::kDecisionFieldNumber,
                              WireFormatLite::WIRETYPE_VARINT);
  constexpr uint32_t kSourceTag =
      WireFormatLite::MakeTag(v1::ResolveResponse::kSourceFieldNumber,
                              WireFormatLite::WIRETYPE_VARINT);
  google::protobuf::io::CodedInputStream in(
      reinterpret_cast<const uint8_t*>(wire.data()),
      static_cast<int>(wire.size()));
  AnswerLabels out;
  while (uint32_t tag = in.ReadTag()) {
    if (tag == kDecisionTag || tag == kSourceTag) {
      uint32_t v = 0;
      if (!in.ReadVarint32(&v)) return AnswerLabels();
      if (tag == kDecisionTag) {
        out.decision = v1::Decision_IsValid(static_cast<int>(v))
                           ? static_cast<v1::Decision>(v)
                           : v1::DECISION_UNSPECIFIED;
      } else {
        out.source = v1::Source_IsValid(static_cast<int>(v))
                         ? static_cast<v1::Source>(v)
                         : v1::SOURCE_UNSPECIFIED;
      }
    } else if (!WireFormatLite::SkipField(&in, tag)) {
      return AnswerLabels();
    }
  }
  return out;
}

RequestMetrics::RequestMetrics(metrics::Registry& registry) {
  static_assert(v1::Decision_ARRAYSIZE == kDecisions);
  static_assert(v1::Source_ARRAYSIZE == kSources);
  const std::string requests = "mxpolicy_requests_total";
  const std::string requests_help =
      "Resolve calls answered, by decision, source and gRPC status code.";
  for (int d = 0; d < kDecisions; ++d) {
    for (int s = 0; s < kSources; ++s) {
      answers_[d][s] = &registry.AddCounter(
          requests, requests_help,
          {{"decision", DecisionLabel(d)},
           {"source", SourceLabel(s)},
           {"code", "OK"}});
    }
  }
  for (int c = 1; c < kCodes; ++c) {
    errors_[c] = &registry.AddCounter(
        requests, requests_help,
        {{"decision", ""},
         {"source", ""},
         {"code", absl::StatusCodeToString(static_cast<absl::StatusCode>(c))}});
  }
  const std::string latency = "mxpolicy_request_duration_seconds";
  const std::string latency_help =
      "Time from a Resolve call's arrival to its answer, by source "
      "(error: calls answered with a status other than OK).";
  for (int s = 0; s < kSources; ++s) {
    latency_[s] = &registry.AddHistogram(latency, latency_help,
                                         {{"source", SourceLabel(s)}},
                                         metrics::LatencyBuckets());
  }
  error_latency_ = &registry.AddHistogram(latency, latency_help,
                                          {{"source", "error"}},
                                          metrics::LatencyBuckets());
}

void RequestMetrics::Record(absl::string_view request_domain,
                            const absl::Status& status, absl::string_view wire,
                            absl::Duration elapsed) {
  AnswerLabels labels;
  if (status.ok()) {
    labels = PeekAnswer(wire);
    answers_[labels.decision][labels.source]->Add();
    latency_[labels.source]->Observe(elapsed);
  } else {
    const int code = static_cast<int>(status.code());
    errors_[code > 0 && code < kCodes ? code : 2 /* UNKNOWN */]->Add();
    error_latency_->Observe(elapsed);
  }
  LogAnswer(request_domain, status, wire, labels, elapsed);
}

}  // namespace mxpolicy
