// Prometheus instruments, the text exposition format, reading an answer's
// labels off the wire, and structured log lines (issue 7 "Observability").
#include "server/src/metrics/metrics.h"

#include <fcntl.h>
#include <unistd.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "mxpolicy/v1/mxpolicy.pb.h"
#include "server/src/log/log.h"
#include "server/src/metrics/metrics_http.h"
#include "server/src/rpc/request_metrics.h"

namespace mxpolicy {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(MetricsTest, CountersRenderWithHelpTypeAndEscapedLabels) {
  metrics::Registry r;
  metrics::Counter& a = r.AddCounter("x_total", "Things.", {{"k", "a\"b\\c\nd"}});
  metrics::Counter& b = r.AddCounter("x_total", "Things.", {{"k", "plain"}});
  a.Add(3);
  b.Add();
  EXPECT_EQ(r.Render(),
            "# HELP x_total Things.\n"
            "# TYPE x_total counter\n"
            "x_total{k=\"a\\\"b\\\\c\\nd\"} 3\n"
            "x_total{k=\"plain\"} 1\n");
}

TEST(MetricsTest, HistogramBucketsAreCumulativeWithSumAndCount) {
  metrics::Registry r;
  metrics::Histogram& h =
      r.AddHistogram("t_seconds", "Time.", {{"s", "x"}}, {0.001, 0.1});
  h.Observe(absl::Microseconds(500));  // ≤ 1 ms
  h.Observe(absl::Milliseconds(1));    // le is inclusive
  h.Observe(absl::Milliseconds(50));
  h.Observe(absl::Seconds(2));  // +Inf only
  const std::string text = r.Render();
  EXPECT_THAT(text, HasSubstr("# TYPE t_seconds histogram\n"));
  EXPECT_THAT(text, HasSubstr("t_seconds_bucket{s=\"x\",le=\"0.001\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("t_seconds_bucket{s=\"x\",le=\"0.1\"} 3\n"));
  EXPECT_THAT(text, HasSubstr("t_seconds_bucket{s=\"x\",le=\"+Inf\"} 4\n"));
  EXPECT_THAT(text, HasSubstr("t_seconds_sum{s=\"x\"} 2.0515\n"));
  EXPECT_THAT(text, HasSubstr("t_seconds_count{s=\"x\"} 4\n"));
}

TEST(MetricsTest, CallbacksAreReadAtScrapeTime) {
  metrics::Registry r;
  double value = 1;
  r.AddCallback("g", "A gauge.", metrics::Type::kGauge, [&value] {
    return std::vector<metrics::Sample>{{{{"c", "decision"}}, value}};
  });
  EXPECT_THAT(r.Render(), HasSubstr("g{c=\"decision\"} 1\n"));
  value = 0.25;
  EXPECT_THAT(r.Render(), HasSubstr("g{c=\"decision\"} 0.25\n"));
}

// The RPC layer labels every answer by decision and source without parsing
// it; the cache appends "source CACHE" to a stored FRESH answer (protobuf:
// the last value wins).
TEST(PeekAnswerTest, ReadsDecisionAndLastSource) {
  v1::ResolveResponse r;
  r.set_domain("example.org");
  r.set_decision(v1::DECISION_STS_ENFORCE);
  r.add_mx_hosts()->set_hostname("mx.example.org");
  r.set_source(v1::SOURCE_FRESH);
  r.set_reason("because");
  std::string wire = r.SerializeAsString();
  AnswerLabels fresh = PeekAnswer(wire);
  EXPECT_EQ(fresh.decision, v1::DECISION_STS_ENFORCE);
  EXPECT_EQ(fresh.source, v1::SOURCE_FRESH);
  v1::ResolveResponse suffix;
  suffix.set_source(v1::SOURCE_CACHE);
  wire += suffix.SerializeAsString();
  EXPECT_EQ(PeekAnswer(wire).source, v1::SOURCE_CACHE);
  EXPECT_EQ(PeekAnswer(wire).decision, v1::DECISION_STS_ENFORCE);
}

TEST(PeekAnswerTest, GarbageGivesUnspecified) {
  for (const std::string& bad :
       {std::string("\xff\xff\xff"), std::string("\x10"),  // truncated varint
        std::string("\x10\x63"),  // decision 99: not a known value
        std::string("\x0a\x50short")}) {
    AnswerLabels l = PeekAnswer(bad);
    EXPECT_EQ(l.decision, v1::DECISION_UNSPECIFIED);
    EXPECT_EQ(l.source, v1::SOURCE_UNSPECIFIED);
  }
}

// Logs: one line per event, untrusted values escaped so they can neither
// end the line nor forge a field; JSON output is one valid object per line.
class LogTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_EQ(pipe2(fds_, O_NONBLOCK), 0); }
  void TearDown() override {
    ConfigureLogging({});
    close(fds_[0]);
    close(fds_[1]);
  }
  std::string Drain() {
    std::string out;
    char buf[4096];
    ssize_t n;
    while ((n = read(fds_[0], buf, sizeof(buf))) > 0) out.append(buf, n);
    return out;
  }
  int fds_[2] = {-1, -1};
};

TEST_F(LogTest, TextEscapesHostileValues) {
  ConfigureLogging({.level = LogLevel::kInfo, .json = false, .fd = fds_[1]});
  LogLine(LogLevel::kInfo, "resolve")
      .Add("domain", "evil.test\nts=forged level=error")
      .Add("n", 3)
      .Add("plain", "ok.test");
  const std::string line = Drain();
  EXPECT_EQ(std::count(line.begin(), line.end(), '\n'), 1) << line;
  EXPECT_THAT(line, HasSubstr(" info resolve domain=\"evil.test\\u000ats=forged "
                              "level=error\" n=3 plain=ok.test\n"));
}

TEST_F(LogTest, JsonIsOneObjectPerLineAndLevelsFilter) {
  ConfigureLogging({.level = LogLevel::kInfo, .json = true, .fd = fds_[1]});
  LogLine(LogLevel::kDebug, "hidden").Add("k", "v");
  LogLine(LogLevel::kWarning, "shown").Add("bytes", "\"q\"\\\x01\xc3");
  const std::string line = Drain();
  EXPECT_THAT(line, Not(HasSubstr("hidden")));
  EXPECT_THAT(line, HasSubstr("\"level\":\"warning\",\"event\":\"shown\","
                              "\"bytes\":\"\\\"q\\\"\\\\\\u0001\\u00c3\"}\n"));
  EXPECT_EQ(line.front(), '{');
  EXPECT_FALSE(LogEnabled(LogLevel::kDebug));
  EXPECT_TRUE(LogEnabled(LogLevel::kError));
}

TEST_F(LogTest, NonFiniteNumbersStayValidJson) {
  ConfigureLogging({.level = LogLevel::kInfo, .json = true, .fd = fds_[1]});
  LogLine(LogLevel::kInfo, "e").Add("grace_s", absl::ToDoubleSeconds(
                                                   absl::InfiniteDuration()));
  EXPECT_THAT(Drain(), HasSubstr("\"grace_s\":\"inf\"}"));
}

// The metrics listener takes exactly one address: civetweb would read
// "a:1,b:2" as two listeners (one perhaps public) and "+9464" as dual-stack.
TEST(MetricsHttpTest, RefusesAnythingButOneAddressAndPort) {
  for (const char* bad :
       {"127.0.0.1:1,0.0.0.0:9464", "+9464", "9464", ":9464", "127.0.0.1:",
        "127.0.0.1:94s64", "[::1:9464", "localhost:9464", "127.0.0.1:70000"}) {
    absl::StatusOr<std::unique_ptr<metrics::MetricsHttpServer>> s =
        metrics::MetricsHttpServer::Start(bad, [] { return std::string(); });
    EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  absl::StatusOr<std::unique_ptr<metrics::MetricsHttpServer>> ok =
      metrics::MetricsHttpServer::Start("127.0.0.1:0", [] { return "x"; });
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_GT((*ok)->port(), 0);
}

}  // namespace
}  // namespace mxpolicy
