// FakeSharedTier: an in-memory SharedTier for unit tests at the L2 seam.
// Gets answer inline from what the test stored (untouched: the code under
// test must validate it), puts and forgets are recorded.
#ifndef MXPOLICY_TESTS_SUPPORT_FAKE_SHARED_TIER_H_
#define MXPOLICY_TESTS_SUPPORT_FAKE_SHARED_TIER_H_

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "server/src/l2/shared_tier.h"

namespace mxpolicy::testing {

// Not thread-safe: unit tests drive it from one thread.
class FakeSharedTier : public SharedTier {
 public:
  void GetPolicy(std::string domain, PolicyCallback done) override {
    ++policy_gets;
    auto it = policies.find(domain);
    std::move(done)(it == policies.end() ? std::nullopt
                                         : std::optional(it->second));
  }
  void GetDecision(std::string domain, DecisionCallback done) override {
    ++decision_gets;
    auto it = decisions.find(domain);
    std::move(done)(it == decisions.end() ? std::nullopt
                                          : std::optional(it->second));
  }
  void PutPolicy(std::string domain, StoredPolicy policy) override {
    put_policies.emplace_back(std::move(domain), std::move(policy));
  }
  void PutDecision(std::string domain, StoredDecision decision) override {
    put_decisions.emplace_back(std::move(domain), std::move(decision));
  }
  void Forget(std::string domain) override {
    forgotten.push_back(std::move(domain));
  }
  void Stop() override {}
  Stats stats() const override { return {}; }

  std::map<std::string, StoredPolicy> policies;
  std::map<std::string, StoredDecision> decisions;
  int policy_gets = 0, decision_gets = 0;
  std::vector<std::pair<std::string, StoredPolicy>> put_policies;
  std::vector<std::pair<std::string, StoredDecision>> put_decisions;
  std::vector<std::string> forgotten;
};

}  // namespace mxpolicy::testing

#endif  // MXPOLICY_TESTS_SUPPORT_FAKE_SHARED_TIER_H_
