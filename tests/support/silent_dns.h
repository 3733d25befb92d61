// SilentDns: a UDP socket on 127.0.0.1 that never answers, and an unbound
// config file naming it as the only upstream for test. — lookups then stay
// in flight until the client's timeout (timeout and drain tests).
#ifndef MXPOLICY_TESTS_SUPPORT_SILENT_DNS_H_
#define MXPOLICY_TESTS_SUPPORT_SILENT_DNS_H_

#include <string>

namespace mxpolicy::testing {

class SilentDns {
 public:
  // Writes the config into `dir` (a unique name per instance).
  explicit SilentDns(const std::string& dir);
  ~SilentDns();
  SilentDns(const SilentDns&) = delete;
  SilentDns& operator=(const SilentDns&) = delete;

  // Empty when the socket or the file could not be made.
  const std::string& conf() const { return conf_; }

 private:
  int fd_ = -1;
  std::string conf_;
};

}  // namespace mxpolicy::testing

#endif  // MXPOLICY_TESTS_SUPPORT_SILENT_DNS_H_
